namespace FastIngest.Storage;

/// <summary>
/// Tests a project has quarantined: their failures do not block the build (the uploader's
/// <c>--fail-on-test-failures</c> and the ingest answer's <c>blocking_failures</c> leave them out). Every change is
/// recorded with who, when and why.
/// </summary>
public interface IQuarantineStore
{
    /// <summary>The project's entries that have not expired by <paramref name="nowMs"/>.</summary>
    ValueTask<IReadOnlyList<QuarantineEntry>> ActiveAsync(long projectKey, long nowMs);

    /// <summary>
    /// Quarantines the test (or changes its reason and expiry); Created says whether it is new. <paramref name="byPolicy"/>
    /// marks an entry the auto-quarantine policy made, which the policy may release again.
    /// </summary>
    Task<(QuarantineEntry Entry, bool Created)> PutAsync(long projectKey, string suite, string name, string reason, long? expiresAtMs, string by, long nowMs,
        bool byPolicy = false);

    /// <summary>The auto-quarantine policy of the project: how many quiet days release a test; null when off.</summary>
    ValueTask<int?> PolicyAsync(long projectKey);

    /// <summary>Turns the policy on (with its quiet period) or off (null), recorded like every change.</summary>
    Task SetPolicyAsync(long projectKey, int? releaseAfterDays, string by, long nowMs);

    /// <summary>Every project with the policy on, and its quiet period.</summary>
    ValueTask<IReadOnlyList<(long ProjectKey, int ReleaseAfterDays)>> PoliciesAsync();

    /// <summary>Releases an entry of the project; null when the project has no such entry.</summary>
    Task<QuarantineEntry?> RemoveAsync(long projectKey, long entryKey, string by, long nowMs);

    /// <summary>The project's newest changes, newest first.</summary>
    ValueTask<IReadOnlyList<QuarantineChange>> ChangesAsync(long projectKey, int limit);
}

public sealed record QuarantineEntry(long Key, string Suite, string Name, string Reason, long CreatedAtMs, string CreatedBy, long? ExpiresAtMs,
    bool Auto = false);

public sealed record QuarantineChange(string Action, string Suite, string Name, string? Reason, string By, long AtMs);
