namespace FastIngest.Storage;

/// <summary>
/// Organizations, projects and API tokens: the low-volume management side of storage. Writes return <see cref="Task"/>
/// (answered once durable); reads return <see cref="ValueTask"/> (an embedded backend answers them synchronously).
/// </summary>
public interface ITenantStore
{
    Task<(CreateResult Result, OrgRecord? Org)> CreateOrgAsync(string name, long nowMs);

    /// <summary>The org, unless it does not exist or its deletion has begun.</summary>
    ValueTask<OrgRecord?> FindOrgAsync(string orgId);

    Task<(CreateResult Result, ProjectRecord? Project)> CreateProjectAsync(long orgKey, string name, long nowMs);

    /// <summary>The project, unless it (or its org) does not exist or its deletion has begun.</summary>
    ValueTask<ProjectRecord?> FindProjectAsync(string projectId);

    /// <summary>Live projects of one org (or of every org when null), by org and name; at most 1,000.</summary>
    ValueTask<IReadOnlyList<ProjectRecord>> ListProjectsAsync(long? orgKey);

    /// <summary>Sets (or clears, with null) how many days of runs the project keeps.</summary>
    Task SetRetentionAsync(long projectKey, int? days);

    /// <summary>Every project with a retention period, for the retention job.</summary>
    ValueTask<IReadOnlyList<(long ProjectKey, int Days)>> ProjectsWithRetentionAsync();

    /// <summary>
    /// Stores a token; false (nothing stored) when its org or project is gone or being deleted, when the token
    /// <paramref name="issuedBy"/> (if any) is revoked, or when its owner already has
    /// <see cref="TokenLimits.ActivePerOwner"/> active (unrevoked, unexpired) tokens of that scope.
    /// </summary>
    Task<bool> InsertTokenAsync(StoredToken token, string? issuedBy = null);

    /// <summary>Active (neither revoked nor expired) tokens of one scope for one owner (an org's org tokens, ...).</summary>
    ValueTask<long> CountActiveTokensAsync(string scope, long? orgKey, long? projectKey, long nowMs);

    /// <summary>The server's 256-bit key for authenticating paging cursors (created by the schema).</summary>
    ValueTask<byte[]> CursorKeyAsync();

    /// <summary>One indexed read by the token's public id.</summary>
    ValueTask<StoredToken?> FindTokenAsync(string tokenId);

    ValueTask<IReadOnlyList<StoredToken>> ListProjectTokensAsync(long projectKey);

    /// <summary>Replaces a token's hash (new parameters), unless it changed meanwhile.</summary>
    Task ReplaceSecretHashAsync(string tokenId, string expected, string replacement);

    ValueTask<bool> HasActiveAdminTokenAsync();

    /// <summary>Marks the token revoked; false when it does not exist or was already revoked.</summary>
    Task<bool> RevokeTokenAsync(string tokenId, long nowMs);

    Task RecordTokenUseAsync(IReadOnlyList<(string TokenId, long LastUsedAtMs)> uses);

    /// <summary>True when the database accepts a write right now (false when it cannot say within <paramref name="timeout"/>).</summary>
    Task<bool> IsWritableAsync(TimeSpan timeout);
}
