namespace FastIngest.Storage;

/// <summary>
/// The rows both backends read with Dapper (the same columns under the same names on SQLite and PostgreSQL), and the
/// SQL that reads a token with its org and project, so each shape and rule is written once.
/// </summary>
internal static class StoredRows
{
    public const string TokenSelect = """
        SELECT t.id AS Id, t.secret_hash AS SecretHash, t.scope AS Scope, t.org_id AS OrgKey, o.public_id AS OrgId,
               t.project_id AS ProjectKey, p.public_id AS ProjectId, t.name AS Name, t.created_at AS CreatedAtMs,
               t.expires_at AS ExpiresAtMs, t.last_used_at AS LastUsedAtMs,
               coalesce(t.revoked_at, p.deleted_at, o.deleted_at,
                        CASE WHEN t.project_id IS NOT NULL AND p.id IS NULL THEN t.created_at END) AS RevokedAtMs
        FROM api_tokens t
        LEFT JOIN orgs o ON o.id = t.org_id
        LEFT JOIN projects p ON p.id = t.project_id
        """;

    internal sealed class OrgRow
    {
        public long Key { get; set; }

        public string Id { get; set; } = "";

        public string Name { get; set; } = "";

        public long CreatedAtMs { get; set; }
    }

    internal sealed class ProjectRow
    {
        public long Key { get; set; }

        public string Id { get; set; } = "";

        public long OrgKey { get; set; }

        public string OrgId { get; set; } = "";

        public string Name { get; set; } = "";

        public long CreatedAtMs { get; set; }

        public int? RetentionDays { get; set; }

        public ProjectRecord ToRecord() => new(Key, Id, OrgKey, OrgId, Name, CreatedAtMs, RetentionDays);
    }

    internal sealed class RetentionRow
    {
        public long ProjectKey { get; set; }

        public int Days { get; set; }
    }

    internal sealed class TokenRow
    {
        public string Id { get; set; } = "";

        public string SecretHash { get; set; } = "";

        public string Scope { get; set; } = "";

        public long? OrgKey { get; set; }

        public string? OrgId { get; set; }

        public long? ProjectKey { get; set; }

        public string? ProjectId { get; set; }

        public string? Name { get; set; }

        public long CreatedAtMs { get; set; }

        public long? ExpiresAtMs { get; set; }

        public long? LastUsedAtMs { get; set; }

        public long? RevokedAtMs { get; set; }

        public StoredToken ToRecord() => new(Id, SecretHash, Scope, OrgKey, OrgId, ProjectKey, ProjectId, Name,
            CreatedAtMs, ExpiresAtMs, LastUsedAtMs, RevokedAtMs);
    }

    internal sealed class EntryRow
    {
        public long Key { get; set; }

        public string Suite { get; set; } = "";

        public string Name { get; set; } = "";

        public string Reason { get; set; } = "";

        public long CreatedAtMs { get; set; }

        public string CreatedBy { get; set; } = "";

        public long? ExpiresAtMs { get; set; }

        public bool Auto { get; set; }

        public QuarantineEntry ToEntry() => new(Key, Suite, Name, Reason, CreatedAtMs, CreatedBy, ExpiresAtMs, Auto);
    }

    internal sealed class PolicyRow
    {
        public long ProjectKey { get; set; }

        public int Days { get; set; }
    }

    internal sealed class ChangeRow
    {
        public string Action { get; set; } = "";

        public string Suite { get; set; } = "";

        public string Name { get; set; } = "";

        public string? Reason { get; set; }

        public string By { get; set; } = "";

        public long AtMs { get; set; }
    }

    internal sealed class ConfirmRow
    {
        public string Action { get; set; } = "";

        public string Target { get; set; } = "";

        public string CredentialId { get; set; } = "";

        public long ExpiresAt { get; set; }

        public long? UsedAt { get; set; }

        /// <summary>Why a token that was not spent could not be (the row is this token's, or null when unknown).</summary>
        public static ConfirmOutcome Refusal(ConfirmRow? row, string action, string target, string credentialId) =>
            row is null ? ConfirmOutcome.Unknown
            : row.Action != action || row.Target != target || row.CredentialId != credentialId ? ConfirmOutcome.Mismatch
            : row.UsedAt is not null ? ConfirmOutcome.AlreadyUsed
            : ConfirmOutcome.Expired;
    }

    /// <summary>What a run adds to (or, deleted, takes from) the daily roll-ups.</summary>
    internal sealed class CountedRun
    {
        public long TimestampMs { get; set; }

        public string? Branch { get; set; }

        public bool Passed { get; set; }

        public long DurationMs { get; set; }
    }
}
