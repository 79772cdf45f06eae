using FastIngest.Configuration;
using FastIngest.Storage.Sqlite;
using Microsoft.Data.Sqlite;

namespace FastIngest.Tests.Storage;

public sealed class MigrationTests : IDisposable
{
    private static readonly string[] s_v6Tables =
    [
        "SELECT id, public_id, name, created_at FROM orgs ORDER BY id",
        "SELECT id, public_id, org_id, name, created_at, retention_days FROM projects ORDER BY id",
        "SELECT id, secret_hash, scope, org_id, project_id, name, created_at, expires_at, last_used_at, revoked_at FROM api_tokens ORDER BY id",
        "SELECT id, project_id, run_id, status, duration_ms, timestamp_ms, branch, commit_sha, count_total, count_passed, count_failed, count_skipped, fingerprint, received_at FROM test_runs ORDER BY id",
        "SELECT * FROM run_daily_stats ORDER BY project_id, day, branch",
        "SELECT * FROM rollup_state",
        "SELECT * FROM confirm_tokens ORDER BY token_hash",
    ];

    /// <summary>Every test case as schema 6 stored it, and the same read back from schema 8's executions.</summary>
    private const string CasesBefore = """
        SELECT run_key, suite, name, status, duration_ms, attempt, failure_message FROM test_cases ORDER BY run_key, suite, name, attempt
        """;

    private const string CasesAfter = """
        SELECT e.run_key, t.suite, t.name, CASE e.status WHEN 0 THEN 'passed' WHEN 1 THEN 'failed' WHEN 2 THEN 'skipped' ELSE 'error' END,
               e.duration_ms, e.attempt, m.message
        FROM executions AS e JOIN tests AS t ON t.id = e.test_id LEFT JOIN failure_messages AS m ON m.id = e.message_id
        ORDER BY e.run_key, t.suite, t.name, e.attempt
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("fastingest-migrate-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task SchemaSixDatabaseUpgradesInPlaceKeepingEveryRowAndNeverReusesAKeyAfterwards()
    {
        using var database = new SqliteDatabase(Path.Combine(_directory, "old.db"), DurabilityMode.Normal);
        using (var connection = database.OpenWriter())
        {
            Execute(connection, "PRAGMA journal_mode=WAL;");
            SqliteMigrations.Apply(connection, upTo: 6);
            // What today's main writes, including the traces of deletions: run 7 and project 4 were the newest and
            // are gone (their keys would have been handed out again), the watermark still says 7.
            Execute(connection, """
                INSERT INTO orgs (id, public_id, name, created_at) VALUES (1, 'o-1', 'one', 10), (2, 'o-2', 'two', 11);
                INSERT INTO projects (id, public_id, org_id, name, created_at, retention_days) VALUES
                    (1, 'p-1', 1, 'a', 12, NULL), (3, 'p-3', 2, 'b', 13, 30);
                INSERT INTO api_tokens (id, secret_hash, scope, org_id, project_id, name, created_at, expires_at, last_used_at, revoked_at) VALUES
                    ('t-admin', 'h0', 'admin', NULL, NULL, 'admin', 1, NULL, 5, NULL),
                    ('t-org', 'h1', 'org', 1, NULL, NULL, 2, NULL, NULL, NULL),
                    ('t-ingest', 'h2', 'ingest', 1, 1, 'ci', 3, 99999, 7, NULL),
                    ('t-read', 'h3', 'read', 2, 3, NULL, 4, NULL, NULL, 8);
                INSERT INTO test_runs (id, project_id, run_id, status, duration_ms, timestamp_ms, branch, commit_sha,
                                       count_total, count_passed, count_failed, count_skipped, fingerprint, received_at) VALUES
                    (1, 1, 'r-1', 'passed', 100, 86400000, 'main', 'abcdef1', 2, 1, 0, 1, x'01', 20),
                    (2, 1, 'r-2', 'failed', 200, 86400001, NULL, NULL, NULL, NULL, NULL, NULL, x'02', 21),
                    (5, 3, 'r-5', 'passed', 300, 172800000, 'dev', NULL, NULL, NULL, NULL, NULL, x'05', 22),
                    (6, 3, 'r-6', 'passed', 400, 172800001, 'dev', NULL, NULL, NULL, NULL, NULL, x'06', 23);
                INSERT INTO test_cases (run_key, seq, suite, name, file, status, duration_ms, attempt, failure_message) VALUES
                    (1, 0, 's', 'first', 'f.py', 'passed', 5, 1, NULL),
                    (1, 1, 's', 'second', NULL, 'skipped', 0, 1, NULL),
                    (2, 0, 's', 'first', NULL, 'failed', 7, 1, 'boom'),
                    (2, 1, 's', 'first', NULL, 'passed', 6, 2, NULL);
                INSERT INTO run_daily_stats (project_id, day, branch, total, passed, failed, duration_max, histogram) VALUES
                    (1, 1, '', 2, 1, 1, 200, x'0102'), (3, 2, 'dev', 2, 2, 0, 400, x'03');
                UPDATE rollup_state SET last_run_id = 7;
                INSERT INTO confirm_tokens (token_hash, action, target, credential_id, summary, created_at, expires_at, used_at)
                    VALUES ('c', 'purge_runs', 'project:p-1', 't-org', 'purge', 1, 2, NULL);
                """);
        }

        var before = Dump(database);
        var casesBefore = Rows(database, CasesBefore);
        Assert.Equal(4, casesBefore.Count);
        database.Migrate();

        Assert.Equal(before, Dump(database));
        Assert.Equal(casesBefore, Rows(database, CasesAfter));
        using (var lease = database.Read())
        {
            Assert.Equal(0L, Scalar(lease.Connection, "SELECT count(*) FROM sqlite_master WHERE name = 'test_cases';"));
        }

        // The per-test roll-ups are folded after the upgrade (both runs of project 1 are on day 1): run 2 retried
        // 'first' from a failure to a pass, and 'second' was skipped.
        using (var writer = new SqliteRunBatchStore(database, DurabilityMode.Normal))
        {
            await new SqliteRollupFolder(database, new SqliteWrites(new InlineStorageWriter(writer), writer), new FastIngest.TestAnalytics.TestStateRules())
                .FoldTestsAsync(int.MaxValue);
        }

        Assert.Equal(["1|first|2|0|0|1", "1|second|0|0|1|0"], Rows(database, """
            SELECT d.day, t.name, d.executions, d.failures, d.skipped, d.retry_passes FROM test_days AS d JOIN tests AS t ON t.id = d.test_id
            WHERE d.branch = '' ORDER BY t.name, d.day
            """).Select(r => r.Replace(" | ", "|", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList());
        using var migrated = database.OpenWriter(); // it writes below
        Assert.Equal(SqliteMigrations.LatestVersion, (int)Scalar(migrated, "PRAGMA user_version;"));
        Assert.Equal(1L, Scalar(migrated, "PRAGMA foreign_keys;"));
        Assert.Equal(0L, Scalar(migrated, "SELECT count(*) FROM pragma_foreign_key_check;"));
        Assert.Equal(32L, Scalar(migrated, "SELECT length(value) FROM server_secrets WHERE name = 'cursor';"));
        Assert.Equal(1L, Scalar(migrated, "SELECT count(*) FROM sqlite_master WHERE name = 'test_runs_by_time';"));

        Execute(migrated, "INSERT INTO projects (public_id, org_id, name, created_at) VALUES ('p-new', 1, 'new', 30);");
        Assert.True(Scalar(migrated, "SELECT id FROM projects WHERE public_id = 'p-new';") > 3);
        Execute(migrated, "INSERT INTO test_runs (project_id, run_id, status, duration_ms, timestamp_ms, fingerprint, received_at) VALUES (1, 'r-new', 'passed', 1, 1, x'00', 1);");
        var runId = Scalar(migrated, "SELECT id FROM test_runs WHERE run_id = 'r-new';");
        Assert.True(runId > 7, $"the first run after the upgrade got id {runId}, at or below the roll-up watermark 7");
    }

    private static List<string> Dump(SqliteDatabase database)
    {
        using var connectionLease = database.Read();
        var connection = connectionLease.Connection;
        var rows = new List<string>();
        foreach (var sql in s_v6Tables)
        {
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var values = new object[reader.FieldCount];
                reader.GetValues(values);
                rows.Add(sql[..20] + ": " + string.Join(" | ", values.Select(v => v is byte[] b ? Convert.ToHexString(b) : v?.ToString())));
            }
        }

        return rows;
    }

    private static List<string> Rows(SqliteDatabase database, string sql)
    {
        using var connectionLease = database.Read();
        var connection = connectionLease.Connection;
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read())
        {
            var values = new object[reader.FieldCount];
            reader.GetValues(values);
            rows.Add(string.Join(" | ", values.Select(v => v?.ToString())));
        }

        return rows;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static long Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
