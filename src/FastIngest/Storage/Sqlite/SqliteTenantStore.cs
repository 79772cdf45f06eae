using Dapper;
using Microsoft.Data.Sqlite;
using static FastIngest.Storage.StoredRows;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// Management-side storage through Dapper.AOT: a read opens a pooled read connection of its own; a write is queued to
/// the one writer (<see cref="SqliteWrites"/>).
/// </summary>
[DapperAot]
public sealed class SqliteTenantStore : ITenantStore
{
    private const int SqliteConstraintUnique = 2067;
    private readonly SqliteDatabase _database;
    private readonly SqliteWrites _writes;
    private Task<bool>? _probe;

    public SqliteTenantStore(SqliteDatabase database, SqliteWrites writes)
    {
        _database = database;
        _writes = writes;
    }

    public Task<(CreateResult Result, OrgRecord? Org)> CreateOrgAsync(string name, long nowMs) =>
        _writes.RunAsync<(CreateResult Result, OrgRecord? Org)>("create_org", connection =>
        {
            var id = Guid.CreateVersion7().ToString();
            try
            {
                var key = connection.ExecuteScalar<long>(
                    "INSERT INTO orgs (public_id, name, created_at) VALUES (@id, @name, @nowMs) RETURNING id;",
                    new { id, name, nowMs });
                return (CreateResult.Created, new OrgRecord(key, id, name, nowMs));
            }
            catch (SqliteException e) when (e.SqliteExtendedErrorCode == SqliteConstraintUnique)
            {
                return (CreateResult.DuplicateName, null);
            }
        });

    public ValueTask<OrgRecord?> FindOrgAsync(string orgId)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        var row = connection.QuerySingleOrDefault<OrgRow>(
            "SELECT id AS Key, public_id AS Id, name AS Name, created_at AS CreatedAtMs FROM orgs WHERE public_id = @orgId AND deleted_at IS NULL;",
            new { orgId });
        return new(row is null ? null : new OrgRecord(row.Key, row.Id, row.Name, row.CreatedAtMs));
    }

    public Task<(CreateResult Result, ProjectRecord? Project)> CreateProjectAsync(long orgKey, string name, long nowMs) =>
        _writes.RunAsync<(CreateResult Result, ProjectRecord? Project)>("create_project", connection =>
        {
            var id = Guid.CreateVersion7().ToString();
            try
            {
                var orgId = connection.QuerySingleOrDefault<string>("SELECT public_id FROM orgs WHERE id = @orgKey;", new { orgKey });
                // The insert re-checks the org in the same statement: an org whose deletion has begun gets no new
                // project, however the two requests race.
                var key = orgId is null ? null : connection.QuerySingleOrDefault<long?>(
                    """
                    INSERT INTO projects (public_id, org_id, name, created_at)
                    SELECT @id, id, @name, @nowMs FROM orgs WHERE id = @orgKey AND deleted_at IS NULL
                    RETURNING id;
                    """,
                    new { id, orgKey, name, nowMs });
                return key is { } created
                    ? (CreateResult.Created, new ProjectRecord(created, id, orgKey, orgId!, name, nowMs))
                    : (CreateResult.ParentNotFound, null);
            }
            catch (SqliteException e) when (e.SqliteExtendedErrorCode == SqliteConstraintUnique)
            {
                return (CreateResult.DuplicateName, null);
            }
        });

    public ValueTask<ProjectRecord?> FindProjectAsync(string projectId)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        var row = connection.QuerySingleOrDefault<ProjectRow>(
            """
            SELECT p.id AS Key, p.public_id AS Id, p.org_id AS OrgKey, o.public_id AS OrgId, p.name AS Name,
                   p.created_at AS CreatedAtMs, p.retention_days AS RetentionDays
            FROM projects p JOIN orgs o ON o.id = p.org_id
            WHERE p.public_id = @projectId AND p.deleted_at IS NULL AND o.deleted_at IS NULL;
            """,
            new { projectId });
        return new(row?.ToRecord());
    }

    public ValueTask<IReadOnlyList<ProjectRecord>> ListProjectsAsync(long? orgKey)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return new(new List<ProjectRecord>(connection.Query<ProjectRow>(
            """
            SELECT p.id AS Key, p.public_id AS Id, p.org_id AS OrgKey, o.public_id AS OrgId, p.name AS Name,
                   p.created_at AS CreatedAtMs, p.retention_days AS RetentionDays
            FROM projects p JOIN orgs o ON o.id = p.org_id
            WHERE (@orgKey IS NULL OR p.org_id = @orgKey) AND p.deleted_at IS NULL AND o.deleted_at IS NULL
            ORDER BY o.name, p.name LIMIT 1000;
            """,
            new { orgKey }).Select(static row => row.ToRecord())));
    }

    public Task SetRetentionAsync(long projectKey, int? days) =>
        _writes.RunAsync("set_retention", connection =>
        {
            connection.Execute("UPDATE projects SET retention_days = @days WHERE id = @projectKey;", new { projectKey, days });
        });

    public ValueTask<IReadOnlyList<(long ProjectKey, int Days)>> ProjectsWithRetentionAsync()
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return new(connection.Query<RetentionRow>("SELECT id AS ProjectKey, retention_days AS Days FROM projects WHERE retention_days IS NOT NULL AND deleted_at IS NULL;")
            .Select(static r => (r.ProjectKey, r.Days))
            .ToList());
    }

    public Task<bool> InsertTokenAsync(StoredToken token, string? issuedBy = null) =>
        _writes.RunAsync<bool>("insert_token", connection =>
        {
            // One statement: no token is minted for an org or project whose deletion has begun (the deletion revoked
            // every token it could see; one inserted after that must not slip past it), nor by a revoked token.
            return connection.Execute(
                """
                INSERT INTO api_tokens (id, secret_hash, scope, org_id, project_id, name, created_at, expires_at)
                SELECT @Id, @SecretHash, @Scope, @OrgKey, @ProjectKey, @Name, @CreatedAtMs, @ExpiresAtMs
                WHERE (@OrgKey IS NULL OR EXISTS (SELECT 1 FROM orgs WHERE id = @OrgKey AND deleted_at IS NULL))
                  AND (@ProjectKey IS NULL OR EXISTS (SELECT 1 FROM projects WHERE id = @ProjectKey AND deleted_at IS NULL))
                  AND (@issuedBy IS NULL OR EXISTS (SELECT 1 FROM api_tokens WHERE id = @issuedBy AND revoked_at IS NULL))
                  AND (SELECT count(*) FROM api_tokens
                       WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > @CreatedAtMs)
                         AND scope = @Scope AND org_id IS @OrgKey AND project_id IS @ProjectKey) < @limit;
                """,
                new
                {
                    token.Id, token.SecretHash, token.Scope, token.OrgKey, token.ProjectKey, token.Name, token.CreatedAtMs, token.ExpiresAtMs, issuedBy,
                    limit = TokenLimits.ActivePerOwner,
                }) == 1;
        });

    public ValueTask<long> CountActiveTokensAsync(string scope, long? orgKey, long? projectKey, long nowMs)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return new(connection.ExecuteScalar<long>(
            """
            SELECT count(*) FROM api_tokens
            WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > @nowMs)
              AND scope = @scope AND org_id IS @orgKey AND project_id IS @projectKey;
            """,
            new { scope, orgKey, projectKey, nowMs }));
    }

    public ValueTask<byte[]> CursorKeyAsync()
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return new(connection.QuerySingle<byte[]>("SELECT value FROM server_secrets WHERE name = 'cursor';"));
    }

    public ValueTask<StoredToken?> FindTokenAsync(string tokenId)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        var row = connection.QuerySingleOrDefault<TokenRow>(TokenSelect + " WHERE t.id = @tokenId;", new { tokenId });
        return new(row?.ToRecord());
    }

    public ValueTask<IReadOnlyList<StoredToken>> ListProjectTokensAsync(long projectKey)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return new(connection.Query<TokenRow>(TokenSelect + " WHERE t.project_id = @projectKey ORDER BY t.created_at, t.id;", new { projectKey })
            .Select(static row => row.ToRecord())
            .ToList());
    }

    public Task ReplaceSecretHashAsync(string tokenId, string expected, string replacement) =>
        _writes.RunAsync("replace_secret_hash", connection =>
        {
            connection.Execute("UPDATE api_tokens SET secret_hash = @replacement WHERE id = @tokenId AND secret_hash = @expected;",
                new { tokenId, expected, replacement });
        });

    public ValueTask<bool> HasActiveAdminTokenAsync()
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return new(connection.ExecuteScalar<long>("SELECT count(*) FROM api_tokens WHERE scope = 'admin' AND revoked_at IS NULL;") > 0);
    }

    public Task<bool> RevokeTokenAsync(string tokenId, long nowMs) =>
        _writes.RunAsync<bool>("revoke_token", connection =>
        {
            return connection.Execute(
                "UPDATE api_tokens SET revoked_at = @nowMs WHERE id = @tokenId AND revoked_at IS NULL;",
                new { tokenId, nowMs }) == 1;
        });

    public Task RecordTokenUseAsync(IReadOnlyList<(string TokenId, long LastUsedAtMs)> uses) =>
        uses.Count == 0
            ? Task.CompletedTask
            : _writes.RunAsync("record_token_use", connection =>
            {
                using var transaction = connection.BeginTransaction(deferred: false);
                foreach (var (tokenId, lastUsedAtMs) in uses)
                {
                    connection.Execute(
                        "UPDATE api_tokens SET last_used_at = max(coalesce(last_used_at, 0), @lastUsedAtMs) WHERE id = @tokenId;",
                        new { tokenId, lastUsedAtMs },
                        transaction);
                }

                transaction.Commit();
            });

    public async Task<bool> IsWritableAsync(TimeSpan timeout)
    {
        // Through the writer's queue like every write: a probe answers for the writer itself (a stuck or failing
        // writer is not ready), and never waits longer than a probe would. Probes need no token, so concurrent ones
        // share the one in flight: a flood of them queues one write, not one each.
        var probe = Volatile.Read(ref _probe);
        if (probe is null || probe.IsCompleted)
        {
            // The slot is claimed first; only the caller that claimed it queues the write.
            var claim = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (Interlocked.CompareExchange(ref _probe, claim.Task, probe) == probe)
            {
                _ = NewProbe().ContinueWith(static (done, state) => ((TaskCompletionSource<bool>)state!).TrySetFromTask(done), claim,
                    CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }

            probe = Volatile.Read(ref _probe)!;
        }

        try
        {
            return await probe.WaitAsync(timeout);
        }
        catch (Exception e) when (e is SqliteException or TimeoutException or InvalidOperationException)
        {
            return false;
        }
    }

    private Task<bool> NewProbe() =>
        _writes.RunAsync("readiness_probe", static connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            // An immediate transaction takes the write lock; a no-op write proves the file accepts writes.
            connection.Execute("PRAGMA user_version = " + SqliteMigrations.LatestVersion + ";", transaction: transaction);
            transaction.Rollback();
            return true;
        }, durable: false);
}
