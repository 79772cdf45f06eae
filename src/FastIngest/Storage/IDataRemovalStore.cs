namespace FastIngest.Storage;

/// <summary>
/// Large deletions, done in bounded batches so no transaction grows without limit and ingest gets the write
/// lock between batches.
/// </summary>
public interface IDataRemovalStore
{
    /// <summary>Runs of the project, optionally only those with a timestamp before <paramref name="beforeMs"/>.</summary>
    ValueTask<long> CountRunsAsync(long projectKey, long? beforeMs);

    /// <summary>Deletes at most <paramref name="batchSize"/> such runs in one transaction; returns how many.</summary>
    Task<int> DeleteRunsBatchAsync(long projectKey, long? beforeMs, int batchSize);

    /// <summary>
    /// Deletes at most <paramref name="maxRows"/> test cases of the runs the next <see cref="DeleteRunsBatchAsync"/>
    /// would delete, in one transaction; returns how many (0 once those runs have none left). Called until 0
    /// before each run batch, so a batch of runs with large uploads never becomes one huge transaction.
    /// </summary>
    Task<int> DeleteTestCasesBatchAsync(long projectKey, long? beforeMs, int batchSize, int maxRows);

    /// <summary>Brings the daily roll-ups in line after runs before <paramref name="beforeMs"/> were purged.</summary>
    Task RebuildRollupsAfterPurgeAsync(long projectKey, long beforeMs);

    /// <summary>Revokes every active token of the project; returns their ids (for cache eviction).</summary>
    Task<IReadOnlyList<string>> RevokeProjectTokensAsync(long projectKey, long nowMs);

    /// <summary>
    /// Starts a project's deletion in one transaction: marks it deleted (from now on it is not found, takes no
    /// run and no new token) and revokes its tokens. Returns the revoked token ids; null when it was already gone.
    /// </summary>
    Task<IReadOnlyList<string>?> BeginProjectDeletionAsync(long projectKey, long nowMs);

    /// <summary>
    /// Starts an org's deletion in one transaction: marks it and every project of it deleted and revokes every
    /// token of the org (org and project tokens). Returns the project keys and revoked token ids; null when it
    /// was already gone.
    /// </summary>
    Task<(IReadOnlyList<long> ProjectKeys, IReadOnlyList<string> TokenIds)?> BeginOrgDeletionAsync(long orgKey, long nowMs);

    /// <summary>
    /// Projects and orgs whose deletion began before <paramref name="beganBeforeMs"/> and did not finish (the
    /// server stopped or crashed meanwhile); the retention job finishes them.
    /// </summary>
    ValueTask<(IReadOnlyList<long> ProjectKeys, IReadOnlyList<long> OrgKeys)> UnfinishedDeletionsAsync(long beganBeforeMs);

    /// <summary>The org's projects (for the confirm step's summary).</summary>
    ValueTask<IReadOnlyList<long>> ProjectKeysOfAsync(long orgKey);

    /// <summary>Deletes the project row with its tokens and roll-ups (its runs must already be gone).</summary>
    Task DeleteProjectAsync(long projectKey, CancellationToken cancellation = default);

    /// <summary>Deletes the org row and its org tokens (its projects must already be gone).</summary>
    Task<IReadOnlyList<string>> DeleteOrgAsync(long orgKey);

    /// <summary>Writes a consistent snapshot of the whole database to <paramref name="path"/> while writes go on.</summary>
    Task<long> BackupAsync(string path, CancellationToken cancellationToken);

    /// <summary>Why this backend writes no backup file (its own tools back it up), or null when <see cref="BackupAsync"/> works.</summary>
    string? BackupUnavailableReason { get; }
}
