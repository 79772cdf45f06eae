using Dapper;

namespace FastIngest.Storage.Sqlite;

[DapperAot]
public sealed class SqliteQuarantineStore : IQuarantineStore
{
    private readonly SqliteDatabase _database;

    public SqliteQuarantineStore(SqliteDatabase database) => _database = database;

    public IReadOnlyList<QuarantineEntry> Active(long projectKey, long nowMs)
    {
        using var connection = _database.Open();
        return new List<QuarantineEntry>(connection.Query<EntryRow>(
            """
            SELECT id AS Key, suite AS Suite, name AS Name, reason AS Reason, created_at AS CreatedAtMs, created_by AS CreatedBy,
                   expires_at AS ExpiresAtMs
            FROM quarantine WHERE project_id = @projectKey AND (expires_at IS NULL OR expires_at > @nowMs) ORDER BY suite, name;
            """,
            new { projectKey, nowMs }).Select(static r => r.ToEntry()));
    }

    public (QuarantineEntry Entry, bool Created) Put(long projectKey, string suite, string name, string reason, long? expiresAtMs, string by, long nowMs)
    {
        using var connection = _database.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        var existed = connection.ExecuteScalar<long>(
            "SELECT count(*) FROM quarantine WHERE project_id = @projectKey AND suite = @suite AND name = @name;",
            new { projectKey, suite, name }, transaction) > 0;
        var row = connection.QuerySingle<EntryRow>(
            """
            INSERT INTO quarantine (project_id, suite, name, reason, created_at, created_by, expires_at)
            VALUES (@projectKey, @suite, @name, @reason, @nowMs, @by, @expiresAtMs)
            ON CONFLICT (project_id, suite, name) DO UPDATE SET reason = excluded.reason, expires_at = excluded.expires_at,
                created_at = excluded.created_at, created_by = excluded.created_by
            RETURNING id AS Key, suite AS Suite, name AS Name, reason AS Reason, created_at AS CreatedAtMs, created_by AS CreatedBy,
                      expires_at AS ExpiresAtMs;
            """,
            new { projectKey, suite, name, reason, nowMs, by, expiresAtMs }, transaction);
        Log(connection, transaction, projectKey, existed ? "changed" : "added", suite, name, reason, by, nowMs);
        transaction.Commit();
        return (row.ToEntry(), !existed);
    }

    public QuarantineEntry? Remove(long projectKey, long entryKey, string by, long nowMs)
    {
        using var connection = _database.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        var row = connection.QuerySingleOrDefault<EntryRow>(
            """
            DELETE FROM quarantine WHERE id = @entryKey AND project_id = @projectKey
            RETURNING id AS Key, suite AS Suite, name AS Name, reason AS Reason, created_at AS CreatedAtMs, created_by AS CreatedBy,
                      expires_at AS ExpiresAtMs;
            """,
            new { entryKey, projectKey }, transaction);
        if (row is not null)
        {
            Log(connection, transaction, projectKey, "released", row.Suite, row.Name, null, by, nowMs);
        }

        transaction.Commit();
        return row?.ToEntry();
    }

    public IReadOnlyList<QuarantineChange> Changes(long projectKey, int limit)
    {
        using var connection = _database.Open();
        return new List<QuarantineChange>(connection.Query<ChangeRow>(
            """
            SELECT action AS Action, suite AS Suite, name AS Name, reason AS Reason, changed_by AS By, changed_at AS AtMs
            FROM quarantine_log WHERE project_id = @projectKey ORDER BY id DESC LIMIT @limit;
            """,
            new { projectKey, limit }).Select(static r => new QuarantineChange(r.Action, r.Suite, r.Name, r.Reason, r.By, r.AtMs)));
    }

    private static void Log(Microsoft.Data.Sqlite.SqliteConnection connection, Microsoft.Data.Sqlite.SqliteTransaction transaction, long projectKey,
        string action, string suite, string name, string? reason, string by, long nowMs) =>
        connection.Execute(
            """
            INSERT INTO quarantine_log (project_id, action, suite, name, reason, changed_by, changed_at)
            VALUES (@projectKey, @action, @suite, @name, @reason, @by, @nowMs);
            """,
            new { projectKey, action, suite, name, reason, by, nowMs }, transaction);

    internal sealed class EntryRow
    {
        public long Key { get; set; }

        public string Suite { get; set; } = "";

        public string Name { get; set; } = "";

        public string Reason { get; set; } = "";

        public long CreatedAtMs { get; set; }

        public string CreatedBy { get; set; } = "";

        public long? ExpiresAtMs { get; set; }

        public QuarantineEntry ToEntry() => new(Key, Suite, Name, Reason, CreatedAtMs, CreatedBy, ExpiresAtMs);
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
}
