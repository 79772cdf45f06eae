using Microsoft.Data.Sqlite;

namespace FastIngest.Storage.Sqlite;

/// <summary>Forward-only schema migrations, tracked in <c>PRAGMA user_version</c>.</summary>
internal static class SqliteMigrations
{
    private static readonly string[] s_steps =
    [
        // 1: the seed's tenancy model, with internal integer keys so the runs index stays small.
        """
        CREATE TABLE orgs (
            id          INTEGER PRIMARY KEY,
            public_id   TEXT    NOT NULL UNIQUE,
            name        TEXT    NOT NULL UNIQUE,
            created_at  INTEGER NOT NULL
        );
        CREATE TABLE projects (
            id          INTEGER PRIMARY KEY,
            public_id   TEXT    NOT NULL UNIQUE,
            org_id      INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            name        TEXT    NOT NULL,
            created_at  INTEGER NOT NULL,
            UNIQUE (org_id, name)
        );
        CREATE TABLE api_tokens (
            id           TEXT    PRIMARY KEY,
            secret_hash  TEXT    NOT NULL,
            scope        TEXT    NOT NULL CHECK (scope IN ('admin', 'org', 'ingest', 'read')),
            org_id       INTEGER REFERENCES orgs(id) ON DELETE CASCADE,
            project_id   INTEGER REFERENCES projects(id) ON DELETE CASCADE,
            name         TEXT,
            created_at   INTEGER NOT NULL,
            expires_at   INTEGER,
            last_used_at INTEGER,
            revoked_at   INTEGER
        ) WITHOUT ROWID;
        CREATE INDEX api_tokens_by_project ON api_tokens (project_id);
        CREATE TABLE test_runs (
            id             INTEGER PRIMARY KEY,
            project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            run_id         TEXT    NOT NULL,
            status         TEXT    NOT NULL CHECK (status IN ('passed', 'failed')),
            duration_ms    INTEGER NOT NULL,
            timestamp_ms   INTEGER NOT NULL,
            branch         TEXT,
            commit_sha     TEXT,
            count_total    INTEGER,
            count_passed   INTEGER,
            count_failed   INTEGER,
            count_skipped  INTEGER,
            fingerprint    BLOB    NOT NULL,
            received_at    INTEGER NOT NULL,
            UNIQUE (project_id, run_id)
        );
        CREATE INDEX test_runs_by_time ON test_runs (project_id, timestamp_ms DESC, id DESC);
        """,
    ];

    public static int LatestVersion => s_steps.Length;

    public static void Apply(SqliteConnection connection)
    {
        var current = ReadVersion(connection);
        if (current > s_steps.Length)
        {
            throw new InvalidOperationException(
                $"The database has schema version {current}, newer than this binary knows ({s_steps.Length}). Upgrade fastingest.");
        }

        for (var version = current + 1; version <= s_steps.Length; version++)
        {
            using var transaction = connection.BeginTransaction();
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = s_steps[version - 1] + $"\nPRAGMA user_version = {version};";
            command.ExecuteNonQuery();
            transaction.Commit();
        }
    }

    private static int ReadVersion(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA user_version;";
        return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
