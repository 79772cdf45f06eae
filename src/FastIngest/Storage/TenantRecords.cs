namespace FastIngest.Storage;

/// <summary>An organization. <see cref="Key"/> is internal; <see cref="Id"/> is what the API shows.</summary>
public sealed record OrgRecord(long Key, string Id, string Name, long CreatedAtMs);

public sealed record ProjectRecord(long Key, string Id, long OrgKey, string OrgId, string Name, long CreatedAtMs, int? RetentionDays = null);

/// <summary>A stored API token: never the secret, only its Argon2id hash.</summary>
public sealed record StoredToken(
    string Id,
    string SecretHash,
    string Scope,
    long? OrgKey,
    string? OrgId,
    long? ProjectKey,
    string? ProjectId,
    string? Name,
    long CreatedAtMs,
    long? ExpiresAtMs,
    long? LastUsedAtMs,
    long? RevokedAtMs);

public enum CreateResult
{
    Created,
    DuplicateName,
    ParentNotFound,
}
