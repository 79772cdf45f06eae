namespace FastIngest.Storage;

/// <summary>Organizations, projects and API tokens: the low-volume management side of storage.</summary>
public interface ITenantStore
{
    (CreateResult Result, OrgRecord? Org) CreateOrg(string name, long nowMs);

    /// <summary>The org, unless it does not exist or its deletion has begun.</summary>
    OrgRecord? FindOrg(string orgId);

    (CreateResult Result, ProjectRecord? Project) CreateProject(long orgKey, string name, long nowMs);

    /// <summary>The project, unless it (or its org) does not exist or its deletion has begun.</summary>
    ProjectRecord? FindProject(string projectId);

    /// <summary>Live projects of one org (or of every org when null), by org and name; at most 1,000.</summary>
    IReadOnlyList<ProjectRecord> ListProjects(long? orgKey);

    /// <summary>Sets (or clears, with null) how many days of runs the project keeps.</summary>
    void SetRetention(long projectKey, int? days);

    /// <summary>Every project with a retention period, for the retention job.</summary>
    IReadOnlyList<(long ProjectKey, int Days)> ProjectsWithRetention();

    /// <summary>
    /// Stores a token; false (nothing stored) when its org or project is gone or being deleted, when the token
    /// <paramref name="issuedBy"/> (if any) is revoked, or when its owner already has
    /// <see cref="TokenLimits.ActivePerOwner"/> active (unrevoked, unexpired) tokens of that scope.
    /// </summary>
    bool InsertToken(StoredToken token, string? issuedBy = null);

    /// <summary>Active (neither revoked nor expired) tokens of one scope for one owner (an org's org tokens, ...).</summary>
    long CountActiveTokens(string scope, long? orgKey, long? projectKey, long nowMs);

    /// <summary>The server's 256-bit key for authenticating paging cursors (created by the schema).</summary>
    byte[] CursorKey();

    /// <summary>One indexed read by the token's public id.</summary>
    StoredToken? FindToken(string tokenId);

    IReadOnlyList<StoredToken> ListProjectTokens(long projectKey);

    /// <summary>Replaces a token's hash (new parameters), unless it changed meanwhile.</summary>
    void ReplaceSecretHash(string tokenId, string expected, string replacement);

    bool HasActiveAdminToken();

    /// <summary>Marks the token revoked; false when it does not exist or was already revoked.</summary>
    bool RevokeToken(string tokenId, long nowMs);

    void RecordTokenUse(IReadOnlyList<(string TokenId, long LastUsedAtMs)> uses);

    /// <summary>True when the database accepts a write right now.</summary>
    bool IsWritable();
}
