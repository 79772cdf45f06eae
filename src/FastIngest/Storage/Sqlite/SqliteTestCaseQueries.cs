using Microsoft.Data.Sqlite;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// Per-test reads. Every query starts from the project's runs in the window (the runs' time index), then reaches
/// each run's cases by the test_cases primary key, so the cost follows the window, not the table.
/// </summary>
public sealed class SqliteTestCaseQueries : ITestCaseQueries
{
    private readonly SqliteDatabase _database;

    public SqliteTestCaseQueries(SqliteDatabase database) => _database = database;

    public IReadOnlyList<StoredTestCase>? ListTestCases(long projectKey, string runId, TestCaseStatus? status, long afterSeq, int limit)
    {
        using var connection = _database.Open();
        using var find = connection.CreateCommand();
        find.CommandText = "SELECT id FROM test_runs WHERE project_id = $project AND run_id = $run;";
        find.Parameters.AddWithValue("$project", projectKey);
        find.Parameters.AddWithValue("$run", runId);
        if (find.ExecuteScalar() is not long runKey)
        {
            return null;
        }

        using var command = connection.CreateCommand();
        command.CommandText = status is null
            ? """
              SELECT seq, suite, name, file, status, duration_ms, attempt, failure_message FROM test_cases
              WHERE run_key = $run AND seq > $after ORDER BY seq LIMIT $limit;
              """
            : """
              SELECT seq, suite, name, file, status, duration_ms, attempt, failure_message FROM test_cases
              WHERE run_key = $run AND seq > $after AND status = $status ORDER BY seq LIMIT $limit;
              """;
        command.Parameters.AddWithValue("$run", runKey);
        command.Parameters.AddWithValue("$after", afterSeq);
        command.Parameters.AddWithValue("$limit", limit);
        if (status is { } wanted)
        {
            command.Parameters.AddWithValue("$status", wanted.ToText());
        }

        var cases = new List<StoredTestCase>(Math.Min(limit, 1024));
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            if (!TestCaseStatuses.TryParse(reader.GetString(4), out var stored))
            {
                throw new InvalidDataException($"test_cases holds an unknown status '{reader.GetString(4)}'.");
            }

            cases.Add(new StoredTestCase(reader.GetInt64(0), new TestCase(
                reader.GetString(1), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3), stored,
                reader.GetInt64(5), reader.GetInt32(6), reader.IsDBNull(7) ? null : reader.GetString(7))));
        }

        return cases;
    }

    public IReadOnlyList<FlakyTest> FlakyTests(long projectKey, long sinceMs, string? branch, int limit)
    {
        // outcomes: every pass or fail in the window. groups: per test and commit (or run, without a commit),
        // whether it both passed and failed. flips: the pass/fail changes of each flaky test over time.
        const string Sql = """
            WITH outcomes AS MATERIALIZED (
                SELECT tc.suite, tc.name, r.id AS run_key, r.timestamp_ms AS ts, tc.attempt,
                       coalesce('c:' || r.commit_sha, 'r:' || r.id) AS grp,
                       tc.status IN ('failed', 'error') AS failed
                FROM test_runs AS r JOIN test_cases AS tc ON tc.run_key = r.id
                WHERE r.project_id = $project AND r.timestamp_ms >= $since AND ($branch IS NULL OR r.branch = $branch)
                  AND tc.status <> 'skipped'
            ),
            flaky AS (
                SELECT suite, name, count(*) AS flaky_groups, max(last_ts) AS last_flaky
                FROM (SELECT suite, name, grp, max(ts) AS last_ts FROM outcomes
                      GROUP BY suite, name, grp HAVING min(failed) = 0 AND max(failed) = 1)
                GROUP BY suite, name
            ),
            ordered AS (
                SELECT o.suite, o.name, o.failed, o.ts,
                       lag(o.failed) OVER (PARTITION BY o.suite, o.name ORDER BY o.ts, o.run_key, o.attempt) AS previous
                FROM outcomes AS o JOIN flaky AS f ON f.suite = o.suite AND f.name = o.name
            )
            SELECT s.suite, s.name, sum(s.failed <> s.previous) AS flips, f.flaky_groups, count(*) AS executions,
                   sum(s.failed) AS failures, f.last_flaky, max(s.ts) AS last_seen
            FROM ordered AS s JOIN flaky AS f ON f.suite = s.suite AND f.name = s.name
            GROUP BY s.suite, s.name
            ORDER BY flips DESC, f.last_flaky DESC, s.suite, s.name
            LIMIT $limit;
            """;
        using var connection = _database.Open();
        using var command = Command(connection, Sql, projectKey, sinceMs, branch, limit);
        var tests = new List<FlakyTest>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            tests.Add(new FlakyTest(reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3),
                reader.GetInt64(4), reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7)));
        }

        return tests;
    }

    public IReadOnlyList<SlowTest> SlowestTests(long projectKey, long sinceMs, string? branch, int limit)
    {
        // Nearest-rank p95: the ceil(0.95 n)-th smallest duration, picked with window functions in one pass.
        const string Sql = """
            WITH samples AS (
                SELECT tc.suite, tc.name, tc.duration_ms,
                       row_number() OVER test_window AS rank,
                       count(*) OVER whole AS n,
                       max(tc.duration_ms) OVER whole AS max_ms,
                       avg(tc.duration_ms) OVER whole AS mean_ms
                FROM test_runs AS r JOIN test_cases AS tc ON tc.run_key = r.id
                WHERE r.project_id = $project AND r.timestamp_ms >= $since AND ($branch IS NULL OR r.branch = $branch)
                  AND tc.status <> 'skipped'
                WINDOW whole AS (PARTITION BY tc.suite, tc.name),
                       test_window AS (PARTITION BY tc.suite, tc.name ORDER BY tc.duration_ms)
            )
            SELECT suite, name, duration_ms, max_ms, mean_ms, n FROM samples
            WHERE rank = (n * 95 + 99) / 100
            ORDER BY duration_ms DESC, suite, name
            LIMIT $limit;
            """;
        using var connection = _database.Open();
        using var command = Command(connection, Sql, projectKey, sinceMs, branch, limit);
        var tests = new List<SlowTest>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            tests.Add(new SlowTest(reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3),
                reader.GetDouble(4), reader.GetInt64(5)));
        }

        return tests;
    }

    private static SqliteCommand Command(SqliteConnection connection, string sql, long projectKey, long sinceMs, string? branch, int limit)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.AddWithValue("$project", projectKey);
        command.Parameters.AddWithValue("$since", sinceMs);
        command.Parameters.AddWithValue("$branch", (object?)branch ?? DBNull.Value);
        command.Parameters.AddWithValue("$limit", limit);
        return command;
    }
}
