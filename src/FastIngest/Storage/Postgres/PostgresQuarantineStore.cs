using Dapper;
using Npgsql;
using static FastIngest.Storage.StoredRows;

namespace FastIngest.Storage.Postgres;

/// <summary>
/// Quarantine on PostgreSQL. A change to one test's entry takes a transaction-scoped advisory lock on (project,
/// suite, name), so two nodes changing the same entry at once happen one after the other and each logs what it
/// really did (added or changed), as SQLite's one writer guarantees.
/// </summary>
[DapperAot]
public sealed class PostgresQuarantineStore : IQuarantineStore
{
    private const string EntryColumns = """
        id AS Key, suite AS Suite, name AS Name, reason AS Reason, created_at AS CreatedAtMs, created_by AS CreatedBy,
        expires_at AS ExpiresAtMs, auto AS Auto
        """;

    private readonly NpgsqlDataSource _db;

    public PostgresQuarantineStore(PostgresDatabase database) => _db = database.DataSource;

    public async ValueTask<IReadOnlyList<QuarantineEntry>> ActiveAsync(long projectKey, long nowMs)
    {
        await using var connection = await _db.OpenConnectionAsync();
        var rows = await connection.QueryAsync<EntryRow>(
            $"SELECT {EntryColumns} FROM quarantine WHERE project_id = @projectKey AND (expires_at IS NULL OR expires_at > @nowMs) ORDER BY suite, name;",
            new { projectKey, nowMs });
        return rows.Select(static r => r.ToEntry()).ToList();
    }

    public async Task<(QuarantineEntry Entry, bool Created)> PutAsync(long projectKey, string suite, string name, string reason, long? expiresAtMs, string by,
        long nowMs, bool byPolicy = false)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted);
        var entry = $"{projectKey}/{suite}/{name}"; // two entries that happen to share a key only wait for each other
        await connection.ExecuteAsync("SELECT pg_advisory_xact_lock(hashtextextended(@entry, 1));", new { entry }, transaction);
        var existed = await connection.ExecuteScalarAsync<long>(
            "SELECT count(*) FROM quarantine WHERE project_id = @projectKey AND suite = @suite AND name = @name;",
            new { projectKey, suite, name }, transaction) > 0;
        var row = await connection.QuerySingleOrDefaultAsync<EntryRow>(
            $"""
            INSERT INTO quarantine (project_id, suite, name, reason, created_at, created_by, expires_at, auto)
            VALUES (@projectKey, @suite, @name, @reason, @nowMs, @by, @expiresAtMs, @byPolicy)
            ON CONFLICT (project_id, suite, name) DO UPDATE SET reason = excluded.reason, expires_at = excluded.expires_at,
                created_at = excluded.created_at, created_by = excluded.created_by, auto = excluded.auto
                WHERE NOT excluded.auto OR quarantine.auto -- the policy never takes over a person's entry
            RETURNING {EntryColumns};
            """,
            new { projectKey, suite, name, reason, nowMs, by, expiresAtMs, byPolicy }, transaction);
        if (row is null)
        {
            // A person's entry for this test already: it stays as they made it.
            var kept = await connection.QuerySingleAsync<EntryRow>(
                $"SELECT {EntryColumns} FROM quarantine WHERE project_id = @projectKey AND suite = @suite AND name = @name;",
                new { projectKey, suite, name }, transaction);
            await transaction.CommitAsync();
            return (kept.ToEntry(), false);
        }

        await LogAsync(connection, transaction, projectKey, (byPolicy ? "auto-" : "") + (existed ? "changed" : "added"), suite, name, reason, by, nowMs);
        await transaction.CommitAsync();
        return (row.ToEntry(), !existed);
    }

    public async Task<QuarantineEntry?> RemoveAsync(long projectKey, long entryKey, string by, long nowMs)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted);
        var row = await connection.QuerySingleOrDefaultAsync<EntryRow>(
            $"""
            DELETE FROM quarantine WHERE id = @entryKey AND project_id = @projectKey AND (@by <> 'auto-quarantine' OR auto)
            RETURNING {EntryColumns};
            """,
            new { entryKey, projectKey, by }, transaction);
        if (row is not null)
        {
            await LogAsync(connection, transaction, projectKey, by == Sqlite.SqliteQuarantineStore.AutoQuarantineBy ? "auto-released" : "released",
                row.Suite, row.Name, null, by, nowMs);
        }

        await transaction.CommitAsync();
        return row?.ToEntry();
    }

    public async ValueTask<int?> PolicyAsync(long projectKey)
    {
        await using var connection = await _db.OpenConnectionAsync();
        return await connection.QuerySingleOrDefaultAsync<int?>(
            "SELECT release_after_days FROM quarantine_policy WHERE project_id = @projectKey;", new { projectKey });
    }

    public async Task SetPolicyAsync(long projectKey, int? releaseAfterDays, string by, long nowMs)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted);
        if (releaseAfterDays is { } days)
        {
            await connection.ExecuteAsync(
                """
                INSERT INTO quarantine_policy (project_id, release_after_days, changed_by, changed_at) VALUES (@projectKey, @days, @by, @nowMs)
                ON CONFLICT (project_id) DO UPDATE SET release_after_days = excluded.release_after_days, changed_by = excluded.changed_by,
                    changed_at = excluded.changed_at;
                """,
                new { projectKey, days, by, nowMs }, transaction);
        }
        else
        {
            await connection.ExecuteAsync("DELETE FROM quarantine_policy WHERE project_id = @projectKey;", new { projectKey }, transaction);
        }

        await LogAsync(connection, transaction, projectKey, releaseAfterDays is null ? "policy-off" : "policy-on", "", "",
            releaseAfterDays is { } d ? $"release after {d} quiet days" : null, by, nowMs);
        await transaction.CommitAsync();
    }

    public async ValueTask<IReadOnlyList<(long ProjectKey, int ReleaseAfterDays)>> PoliciesAsync()
    {
        await using var connection = await _db.OpenConnectionAsync();
        var rows = await connection.QueryAsync<PolicyRow>("SELECT project_id AS ProjectKey, release_after_days AS Days FROM quarantine_policy;");
        return rows.Select(static r => (r.ProjectKey, r.Days)).ToList();
    }

    public async ValueTask<IReadOnlyList<QuarantineChange>> ChangesAsync(long projectKey, int limit)
    {
        await using var connection = await _db.OpenConnectionAsync();
        var rows = await connection.QueryAsync<ChangeRow>(
            """
            SELECT action AS Action, suite AS Suite, name AS Name, reason AS Reason, changed_by AS By, changed_at AS AtMs
            FROM quarantine_log WHERE project_id = @projectKey ORDER BY id DESC LIMIT @limit;
            """,
            new { projectKey, limit });
        return rows.Select(static r => new QuarantineChange(r.Action, r.Suite, r.Name, r.Reason, r.By, r.AtMs)).ToList();
    }

    private static Task<int> LogAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long projectKey, string action, string suite, string name,
        string? reason, string by, long nowMs) =>
        connection.ExecuteAsync(
            """
            INSERT INTO quarantine_log (project_id, action, suite, name, reason, changed_by, changed_at)
            VALUES (@projectKey, @action, @suite, @name, @reason, @by, @nowMs);
            """,
            new { projectKey, action, suite, name, reason, by, nowMs }, transaction);
}
