using System.Text;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// Per-test reads. Every query starts from the project's runs in the window (the runs' time index), then reaches
/// each run's cases by the test_cases primary key, so the cost follows the window, not the table. Flaky and
/// slowest stream those rows, already in time order, into <see cref="FlakyTestFinder"/> and
/// <see cref="SlowTestRanker"/>: one pass and no sorting in SQL.
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
        // Only tests that failed at least once in the window can be flaky: a cheap first pass finds them, so
        // the streamed pass reads the executions of a few tests, not of all.
        var finder = new FlakyTestFinder();
        var names = Scan(FlakyScanSql, projectKey, sinceMs, branch,
            (test, group, failed, timestampMs, _) => finder.Add(test, group, failed, timestampMs));
        return finder.Top(names, limit);
    }

    public IReadOnlyList<SlowTest> SlowestTests(long projectKey, long sinceMs, string? branch, int limit)
    {
        var ranker = new SlowTestRanker();
        var names = Scan(ScanSql, projectKey, sinceMs, branch, (test, _, _, _, durationMs) => ranker.Add(test, durationMs));
        return ranker.Top(names, limit);
    }

    private const string ScanSql = """
        SELECT tc.suite, tc.name, tc.status, tc.duration_ms, r.id, r.timestamp_ms, r.commit_sha
        FROM test_runs AS r INDEXED BY test_runs_by_time JOIN test_cases AS tc ON tc.run_key = r.id
        WHERE r.project_id = ?1 AND r.timestamp_ms >= ?2 AND (?3 IS NULL OR r.branch = ?3) AND tc.status <> 'skipped'
        ORDER BY r.timestamp_ms, r.id, tc.seq;
        """;

    private const string FlakyScanSql = """
        WITH failing AS (
            SELECT DISTINCT tc.suite, tc.name
            FROM test_runs AS r INDEXED BY test_runs_by_time JOIN test_cases AS tc ON tc.run_key = r.id
            WHERE r.project_id = ?1 AND r.timestamp_ms >= ?2 AND (?3 IS NULL OR r.branch = ?3)
              AND tc.status IN ('failed', 'error')
        )
        SELECT tc.suite, tc.name, tc.status, tc.duration_ms, r.id, r.timestamp_ms, r.commit_sha
        FROM test_runs AS r INDEXED BY test_runs_by_time JOIN test_cases AS tc ON tc.run_key = r.id
        WHERE r.project_id = ?1 AND r.timestamp_ms >= ?2 AND (?3 IS NULL OR r.branch = ?3) AND tc.status <> 'skipped'
          AND (tc.suite, tc.name) IN failing
        ORDER BY r.timestamp_ms, r.id, tc.seq;
        """;

    private delegate void ExecutionSink(int test, long group, bool failed, long timestampMs, long durationMs);

    /// <summary>
    /// Streams the window's non-skipped executions in run-time order through the raw SQLite API, giving each
    /// (suite, name) a dense id and each commit a group id (a commit-less run is its own group), without a
    /// string per row: names are decoded into a reused buffer and looked up by span. Returns the ids' names.
    /// </summary>
    private List<(string Suite, string Name)> Scan(string sql, long projectKey, long sinceMs, string? branch, ExecutionSink sink)
    {
        using var connection = _database.Open();
        var db = connection.Handle!;
        Check(db, raw.sqlite3_prepare_v2(db, sql, out var statement));
        using (statement)
        {
            raw.sqlite3_bind_int64(statement, 1, projectKey);
            raw.sqlite3_bind_int64(statement, 2, sinceMs);
            if (branch is null)
            {
                raw.sqlite3_bind_null(statement, 3);
            }
            else
            {
                raw.sqlite3_bind_text(statement, 3, branch);
            }

            var names = new List<(string Suite, string Name)>();
            var tests = new Dictionary<string, int>(StringComparer.Ordinal);
            var testIds = tests.GetAlternateLookup<ReadOnlySpan<char>>();
            var commits = new Dictionary<string, long>(StringComparer.Ordinal);
            var commitIds = commits.GetAlternateLookup<ReadOnlySpan<char>>();
            var key = new char[1024];
            int rc;
            while ((rc = raw.sqlite3_step(statement)) == raw.SQLITE_ROW)
            {
                var suite = raw.sqlite3_column_blob(statement, 0);
                var name = raw.sqlite3_column_blob(statement, 1);
                if (key.Length < suite.Length + name.Length + 1)
                {
                    key = new char[(suite.Length + name.Length + 1) * 2];
                }

                // "suite\0name": NUL never appears in either (XML cannot carry it; JSON names are compared whole).
                var length = Encoding.UTF8.GetChars(suite, key);
                key[length++] = '\0';
                length += Encoding.UTF8.GetChars(name, key.AsSpan(length));
                if (!testIds.TryGetValue(key.AsSpan(0, length), out var test))
                {
                    test = names.Count;
                    tests.Add(new string(key, 0, length), test);
                    names.Add((Encoding.UTF8.GetString(suite), Encoding.UTF8.GetString(name)));
                }

                long group;
                if (raw.sqlite3_column_type(statement, 6) == raw.SQLITE_NULL)
                {
                    group = -raw.sqlite3_column_int64(statement, 4);
                }
                else
                {
                    var commit = raw.sqlite3_column_blob(statement, 6);
                    var commitLength = Encoding.UTF8.GetChars(commit, key);
                    if (!commitIds.TryGetValue(key.AsSpan(0, commitLength), out group))
                    {
                        group = commits.Count + 1;
                        commits.Add(new string(key, 0, commitLength), group);
                    }
                }

                // status is passed, failed or error here (skipped is filtered out): only "passed" starts with 'p'.
                var failed = raw.sqlite3_column_blob(statement, 2)[0] != (byte)'p';
                sink(test, group, failed, raw.sqlite3_column_int64(statement, 5), raw.sqlite3_column_int64(statement, 3));
            }

            Check(db, rc);
            return names;
        }
    }

    private static void Check(sqlite3 db, int rc)
    {
        if (rc is not (raw.SQLITE_OK or raw.SQLITE_DONE or raw.SQLITE_ROW))
        {
            SqliteException.ThrowExceptionForRC(rc, db);
        }
    }

}
