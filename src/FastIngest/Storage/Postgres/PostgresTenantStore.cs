using Dapper;
using Npgsql;
using static FastIngest.Storage.StoredRows;

namespace FastIngest.Storage.Postgres;

/// <summary>
/// Orgs, projects and tokens in PostgreSQL. Several nodes write at once here (there is no single writer), so every
/// rule SQLite gets from its one writer is a lock instead: creating under a parent takes <c>FOR SHARE</c> on the
/// parent's row, which a deletion's update of that row waits for (and, once the deletion committed, the creation
/// sees the parent gone); a token's per-owner limit is counted under a transaction-scoped advisory lock per owner.
/// </summary>
[DapperAot]
public sealed class PostgresTenantStore : ITenantStore
{
    private readonly NpgsqlDataSource _db;

    public PostgresTenantStore(PostgresDatabase database) => _db = database.DataSource;

    public async Task<(CreateResult Result, OrgRecord? Org)> CreateOrgAsync(string name, long nowMs)
    {
        var id = Guid.CreateVersion7().ToString();
        await using var connection = await _db.OpenConnectionAsync();
        try
        {
            var key = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO orgs (public_id, name, created_at) VALUES (@id, @name, @nowMs) RETURNING id;", new { id, name, nowMs });
            return (CreateResult.Created, new OrgRecord(key, id, name, nowMs));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return (CreateResult.DuplicateName, null);
        }
    }

    public async ValueTask<OrgRecord?> FindOrgAsync(string orgId)
    {
        await using var connection = await _db.OpenConnectionAsync();
        var row = await connection.QuerySingleOrDefaultAsync<OrgRow>(
            "SELECT id AS Key, public_id AS Id, name AS Name, created_at AS CreatedAtMs FROM orgs WHERE public_id = @orgId AND deleted_at IS NULL;",
            new { orgId });
        return row is null ? null : new OrgRecord(row.Key, row.Id, row.Name, row.CreatedAtMs);
    }

    public async Task<(CreateResult Result, ProjectRecord? Project)> CreateProjectAsync(long orgKey, string name, long nowMs)
    {
        var id = Guid.CreateVersion7().ToString();
        await using var connection = await _db.OpenConnectionAsync();
        try
        {
            var orgId = await connection.QuerySingleOrDefaultAsync<string>("SELECT public_id FROM orgs WHERE id = @orgKey;", new { orgKey });
            // FOR SHARE: an org deletion in flight (it updates the org's row) is waited for, and then the org is
            // seen gone; one that starts after this insert waits for it and then marks this project deleted too.
            var key = orgId is null ? null : await connection.QuerySingleOrDefaultAsync<long?>(
                """
                INSERT INTO projects (public_id, org_id, name, created_at)
                SELECT @id, id, @name, @nowMs FROM (SELECT id FROM orgs WHERE id = @orgKey AND deleted_at IS NULL FOR SHARE) AS live
                RETURNING id;
                """,
                new { id, orgKey, name, nowMs });
            return key is { } created
                ? (CreateResult.Created, new ProjectRecord(created, id, orgKey, orgId!, name, nowMs))
                : (CreateResult.ParentNotFound, null);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return (CreateResult.DuplicateName, null);
        }
    }

    public async ValueTask<ProjectRecord?> FindProjectAsync(string projectId)
    {
        await using var connection = await _db.OpenConnectionAsync();
        var row = await connection.QuerySingleOrDefaultAsync<ProjectRow>(
            """
            SELECT p.id AS Key, p.public_id AS Id, p.org_id AS OrgKey, o.public_id AS OrgId, p.name AS Name,
                   p.created_at AS CreatedAtMs, p.retention_days AS RetentionDays
            FROM projects p JOIN orgs o ON o.id = p.org_id
            WHERE p.public_id = @projectId AND p.deleted_at IS NULL AND o.deleted_at IS NULL;
            """,
            new { projectId });
        return row?.ToRecord();
    }

    public async ValueTask<IReadOnlyList<ProjectRecord>> ListProjectsAsync(long? orgKey)
    {
        await using var connection = await _db.OpenConnectionAsync();
        var rows = await connection.QueryAsync<ProjectRow>(
            """
            SELECT p.id AS Key, p.public_id AS Id, p.org_id AS OrgKey, o.public_id AS OrgId, p.name AS Name,
                   p.created_at AS CreatedAtMs, p.retention_days AS RetentionDays
            FROM projects p JOIN orgs o ON o.id = p.org_id
            WHERE (@orgKey::bigint IS NULL OR p.org_id = @orgKey) AND p.deleted_at IS NULL AND o.deleted_at IS NULL
            ORDER BY o.name COLLATE "C", p.name COLLATE "C" LIMIT 1000; -- bytewise, as SQLite sorts
            """,
            new { orgKey });
        return rows.Select(static row => row.ToRecord()).ToList();
    }

    public async Task SetRetentionAsync(long projectKey, int? days)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await connection.ExecuteAsync("UPDATE projects SET retention_days = @days WHERE id = @projectKey;", new { projectKey, days });
    }

    public async ValueTask<IReadOnlyList<(long ProjectKey, int Days)>> ProjectsWithRetentionAsync()
    {
        await using var connection = await _db.OpenConnectionAsync();
        var rows = await connection.QueryAsync<RetentionRow>(
            "SELECT id AS ProjectKey, retention_days AS Days FROM projects WHERE retention_days IS NOT NULL AND deleted_at IS NULL;");
        return rows.Select(static r => (r.ProjectKey, r.Days)).ToList();
    }

    public async Task<bool> InsertTokenAsync(StoredToken token, string? issuedBy = null)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted);
        // The owner's active tokens are counted and the new one inserted under one lock per owner, so two nodes
        // issuing at once cannot both see room for the last place.
        var owner = $"{token.Scope}:{token.OrgKey}:{token.ProjectKey}";
        await connection.ExecuteAsync("SELECT pg_advisory_xact_lock(hashtextextended(@owner, 0));", new { owner }, transaction);
        var inserted = await connection.ExecuteAsync(
            """
            INSERT INTO api_tokens (id, secret_hash, scope, org_id, project_id, name, created_at, expires_at)
            SELECT @Id, @SecretHash, @Scope, @OrgKey, @ProjectKey, @Name, @CreatedAtMs, @ExpiresAtMs
            WHERE (@OrgKey::bigint IS NULL OR EXISTS (SELECT 1 FROM orgs WHERE id = @OrgKey AND deleted_at IS NULL FOR SHARE))
              AND (@ProjectKey::bigint IS NULL OR EXISTS (SELECT 1 FROM projects WHERE id = @ProjectKey AND deleted_at IS NULL FOR SHARE))
              AND (@issuedBy::text IS NULL OR EXISTS (SELECT 1 FROM api_tokens WHERE id = @issuedBy AND revoked_at IS NULL FOR SHARE))
              AND (SELECT count(*) FROM api_tokens
                   WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > @CreatedAtMs)
                     AND scope = @Scope AND org_id IS NOT DISTINCT FROM @OrgKey AND project_id IS NOT DISTINCT FROM @ProjectKey) < @limit;
            """,
            new
            {
                token.Id, token.SecretHash, token.Scope, token.OrgKey, token.ProjectKey, token.Name, token.CreatedAtMs, token.ExpiresAtMs, issuedBy,
                limit = TokenLimits.ActivePerOwner,
            },
            transaction);
        await transaction.CommitAsync();
        return inserted == 1;
    }

    public async ValueTask<long> CountActiveTokensAsync(string scope, long? orgKey, long? projectKey, long nowMs)
    {
        await using var connection = await _db.OpenConnectionAsync();
        return await connection.ExecuteScalarAsync<long>(
            """
            SELECT count(*) FROM api_tokens
            WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > @nowMs)
              AND scope = @scope AND org_id IS NOT DISTINCT FROM @orgKey AND project_id IS NOT DISTINCT FROM @projectKey;
            """,
            new { scope, orgKey, projectKey, nowMs });
    }

    public async ValueTask<byte[]> CursorKeyAsync()
    {
        await using var connection = await _db.OpenConnectionAsync();
        return await connection.QuerySingleAsync<byte[]>("SELECT value FROM server_secrets WHERE name = 'cursor';");
    }

    public async ValueTask<StoredToken?> FindTokenAsync(string tokenId)
    {
        await using var connection = await _db.OpenConnectionAsync();
        var row = await connection.QuerySingleOrDefaultAsync<TokenRow>(TokenSelect + " WHERE t.id = @tokenId;", new { tokenId });
        return row?.ToRecord();
    }

    public async ValueTask<IReadOnlyList<StoredToken>> ListProjectTokensAsync(long projectKey)
    {
        await using var connection = await _db.OpenConnectionAsync();
        var rows = await connection.QueryAsync<TokenRow>(TokenSelect + " WHERE t.project_id = @projectKey ORDER BY t.created_at, t.id;", new { projectKey });
        return rows.Select(static row => row.ToRecord()).ToList();
    }

    public async Task ReplaceSecretHashAsync(string tokenId, string expected, string replacement)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await connection.ExecuteAsync("UPDATE api_tokens SET secret_hash = @replacement WHERE id = @tokenId AND secret_hash = @expected;",
            new { tokenId, expected, replacement });
    }

    public async ValueTask<bool> HasActiveAdminTokenAsync()
    {
        await using var connection = await _db.OpenConnectionAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT count(*) FROM api_tokens WHERE scope = 'admin' AND revoked_at IS NULL;") > 0;
    }

    public async Task<bool> RevokeTokenAsync(string tokenId, long nowMs)
    {
        await using var connection = await _db.OpenConnectionAsync();
        // One statement: the notification goes out with the commit, so every node retires the token at once.
        return await connection.ExecuteScalarAsync<long>(
            $"""
            WITH revoked AS (UPDATE api_tokens SET revoked_at = @nowMs WHERE id = @tokenId AND revoked_at IS NULL RETURNING id)
            SELECT count({PostgresRetirementFeed.Notify("'token:' || id")}) FROM revoked;
            """,
            new { tokenId, nowMs }) == 1;
    }

    public async Task RecordTokenUseAsync(IReadOnlyList<(string TokenId, long LastUsedAtMs)> uses)
    {
        if (uses.Count == 0)
        {
            return;
        }

        // One statement per token, each its own transaction, in id order: several nodes flushing (or a deletion
        // revoking) never hold two of these rows at once, so they cannot deadlock. A use lost to a crash only makes
        // last_used_at older.
        await using var connection = await _db.OpenConnectionAsync();
        foreach (var (tokenId, lastUsedAtMs) in uses.OrderBy(static u => u.TokenId, StringComparer.Ordinal))
        {
            await connection.ExecuteAsync(
                "UPDATE api_tokens SET last_used_at = GREATEST(coalesce(last_used_at, 0), @lastUsedAtMs) WHERE id = @tokenId;",
                new { tokenId, lastUsedAtMs });
        }
    }

    public async Task<bool> IsWritableAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await using var connection = await _db.OpenConnectionAsync(deadline.Token);
            await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, deadline.Token);
            // A write the server must accept (not a read-only replica, not a full disk's refusal), then undone.
            await using var command = new NpgsqlCommand("UPDATE fastingest_schema SET version = version;", connection, transaction);
            await command.ExecuteNonQueryAsync(deadline.Token);
            await transaction.RollbackAsync(deadline.Token);
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException)
        {
            return false;
        }
    }
}
