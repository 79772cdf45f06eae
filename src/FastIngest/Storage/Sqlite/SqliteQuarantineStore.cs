using Dapper;
using static FastIngest.Storage.StoredRows;

namespace FastIngest.Storage.Sqlite;

[DapperAot]
public sealed class SqliteQuarantineStore : IQuarantineStore
{
    private readonly SqliteDatabase _database;
    private readonly SqliteWrites _writes;

    public SqliteQuarantineStore(SqliteDatabase database, SqliteWrites writes)
    {
        _database = database;
        _writes = writes;
    }

    public ValueTask<IReadOnlyList<QuarantineEntry>> ActiveAsync(long projectKey, long nowMs)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return new(new List<QuarantineEntry>(connection.Query<EntryRow>(
            """
            SELECT id AS Key, suite AS Suite, name AS Name, reason AS Reason, created_at AS CreatedAtMs, created_by AS CreatedBy,
                   expires_at AS ExpiresAtMs, auto AS Auto
            FROM quarantine WHERE project_id = @projectKey AND (expires_at IS NULL OR expires_at > @nowMs) ORDER BY suite, name;
            """,
            new { projectKey, nowMs }).Select(static r => r.ToEntry())));
    }

    public Task<(QuarantineEntry Entry, bool Created)> PutAsync(long projectKey, string suite, string name, string reason, long? expiresAtMs, string by, long nowMs,
        bool byPolicy = false) =>
        _writes.RunAsync<(QuarantineEntry Entry, bool Created)>("put_quarantine", connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            var existed = connection.ExecuteScalar<long>(
                "SELECT count(*) FROM quarantine WHERE project_id = @projectKey AND suite = @suite AND name = @name;",
                new { projectKey, suite, name }, transaction) > 0;
            var row = connection.QuerySingleOrDefault<EntryRow>(
                """
                INSERT INTO quarantine (project_id, suite, name, reason, created_at, created_by, expires_at, auto)
                VALUES (@projectKey, @suite, @name, @reason, @nowMs, @by, @expiresAtMs, @autoFlag)
                ON CONFLICT (project_id, suite, name) DO UPDATE SET reason = excluded.reason, expires_at = excluded.expires_at,
                    created_at = excluded.created_at, created_by = excluded.created_by, auto = excluded.auto
                    WHERE excluded.auto = 0 OR quarantine.auto = 1 -- the policy never takes over a person's entry
                RETURNING id AS Key, suite AS Suite, name AS Name, reason AS Reason, created_at AS CreatedAtMs, created_by AS CreatedBy,
                          expires_at AS ExpiresAtMs, auto AS Auto;
                """,
                new { projectKey, suite, name, reason, nowMs, by, expiresAtMs, autoFlag = byPolicy ? 1 : 0 }, transaction);
            if (row is null)
            {
                // A person's entry for this test already: it stays as they made it.
                var kept = connection.QuerySingle<EntryRow>(
                    """
                    SELECT id AS Key, suite AS Suite, name AS Name, reason AS Reason, created_at AS CreatedAtMs, created_by AS CreatedBy,
                           expires_at AS ExpiresAtMs, auto AS Auto
                    FROM quarantine WHERE project_id = @projectKey AND suite = @suite AND name = @name;
                    """,
                    new { projectKey, suite, name }, transaction);
                transaction.Commit();
                return (kept.ToEntry(), false);
            }

            Log(connection, transaction, projectKey, (byPolicy ? "auto-" : "") + (existed ? "changed" : "added"), suite, name, reason, by, nowMs);
            transaction.Commit();
            return (row.ToEntry(), !existed);
        });

    public Task<QuarantineEntry?> RemoveAsync(long projectKey, long entryKey, string by, long nowMs) =>
        _writes.RunAsync<QuarantineEntry?>("remove_quarantine", connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            var row = connection.QuerySingleOrDefault<EntryRow>(
                """
                DELETE FROM quarantine WHERE id = @entryKey AND project_id = @projectKey AND (@by <> 'auto-quarantine' OR auto = 1)
                RETURNING id AS Key, suite AS Suite, name AS Name, reason AS Reason, created_at AS CreatedAtMs, created_by AS CreatedBy,
                          expires_at AS ExpiresAtMs, auto AS Auto;
                """,
                new { entryKey, projectKey, by }, transaction);
            if (row is not null)
            {
                Log(connection, transaction, projectKey, by == AutoQuarantineBy ? "auto-released" : "released", row.Suite, row.Name, null, by, nowMs);
            }

            transaction.Commit();
            return row?.ToEntry();
        });

    /// <summary>Who the policy's own changes are recorded as.</summary>
    public const string AutoQuarantineBy = "auto-quarantine";

    public ValueTask<int?> PolicyAsync(long projectKey)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return new(connection.QuerySingleOrDefault<int?>("SELECT release_after_days FROM quarantine_policy WHERE project_id = @projectKey;", new { projectKey }));
    }

    public Task SetPolicyAsync(long projectKey, int? releaseAfterDays, string by, long nowMs) =>
        _writes.RunAsync("set_quarantine_policy", connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            if (releaseAfterDays is { } days)
            {
                connection.Execute(
                    """
                    INSERT INTO quarantine_policy (project_id, release_after_days, changed_by, changed_at) VALUES (@projectKey, @days, @by, @nowMs)
                    ON CONFLICT (project_id) DO UPDATE SET release_after_days = excluded.release_after_days, changed_by = excluded.changed_by,
                        changed_at = excluded.changed_at;
                    """,
                    new { projectKey, days, by, nowMs }, transaction);
            }
            else
            {
                connection.Execute("DELETE FROM quarantine_policy WHERE project_id = @projectKey;", new { projectKey }, transaction);
            }

            Log(connection, transaction, projectKey, releaseAfterDays is null ? "policy-off" : "policy-on", "", "",
                releaseAfterDays is { } d ? $"release after {d} quiet days" : null, by, nowMs);
            transaction.Commit();
        });

    public ValueTask<IReadOnlyList<(long ProjectKey, int ReleaseAfterDays)>> PoliciesAsync()
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return new(connection.Query<PolicyRow>("SELECT project_id AS ProjectKey, release_after_days AS Days FROM quarantine_policy;")
            .Select(static r => (r.ProjectKey, r.Days)).ToList());
    }

    public ValueTask<IReadOnlyList<QuarantineChange>> ChangesAsync(long projectKey, int limit)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return new(new List<QuarantineChange>(connection.Query<ChangeRow>(
            """
            SELECT action AS Action, suite AS Suite, name AS Name, reason AS Reason, changed_by AS By, changed_at AS AtMs
            FROM quarantine_log WHERE project_id = @projectKey ORDER BY id DESC LIMIT @limit;
            """,
            new { projectKey, limit }).Select(static r => new QuarantineChange(r.Action, r.Suite, r.Name, r.Reason, r.By, r.AtMs))));
    }

    private static void Log(Microsoft.Data.Sqlite.SqliteConnection connection, Microsoft.Data.Sqlite.SqliteTransaction transaction, long projectKey,
        string action, string suite, string name, string? reason, string by, long nowMs) =>
        connection.Execute(
            """
            INSERT INTO quarantine_log (project_id, action, suite, name, reason, changed_by, changed_at)
            VALUES (@projectKey, @action, @suite, @name, @reason, @by, @nowMs);
            """,
            new { projectKey, action, suite, name, reason, by, nowMs }, transaction);
}
