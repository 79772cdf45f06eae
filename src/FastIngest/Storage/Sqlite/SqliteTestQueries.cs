using SQLitePCL;
using Microsoft.Data.Sqlite;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// Per-test reads. Window reads scan roll-up rows by their primary key prefix (project, branch, day), so their
/// cost is tests x days in the window whatever the number of executions; one test's history goes through
/// <c>test_days_by_test</c> to the days it ran, then to those days' runs by the runs' time index and to its
/// executions by primary key (run, test).
/// </summary>
public sealed class SqliteTestQueries : ITestQueries
{
    private readonly SqliteDatabase _database;
    private readonly SqliteRollupFolder _folder;
    private readonly SqliteWrites _writes;

    public SqliteTestQueries(SqliteDatabase database, SqliteRollupFolder folder, SqliteWrites writes)
    {
        _database = database;
        _folder = folder;
        _writes = writes;
    }

    /// <summary>Reads fold what is pending, up to a bound (about 200,000 executions): a backlog is the background loop's.</summary>
    public Task FoldPendingAsync() => _folder.FoldTestsAsync(maxChunks: 4);

    public ValueTask<IReadOnlyList<RunExecution>?> ListRunExecutionsAsync(long projectKey, string runId, TestCaseStatus? status, ExecutionPosition after, int limit)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        // The rows that carry executions: the run itself, or each of its shards (never a sharded run's head).
        var rows = new List<(long Key, string Shard)>();
        using (var find = connection.Rent("SELECT id, shard FROM test_runs WHERE project_id = $project AND run_id = $run AND shards IS NULL ORDER BY id;"))
        {
            find.Parameters.AddWithValue("$project", projectKey);
            find.Parameters.AddWithValue("$run", runId);
            using var reader = find.ExecuteReader();
            while (reader.Read())
            {
                rows.Add((reader.GetInt64(0), reader.GetString(1)));
            }
        }

        if (rows.Count == 0)
        {
            return default;
        }

        using var command = connection.Rent($"""
            SELECT e.test_id, e.attempt, e.status, e.duration_ms, t.suite, t.name, t.file, m.message
            FROM executions AS e
            JOIN tests AS t ON t.id = e.test_id
            LEFT JOIN failure_messages AS m ON m.id = e.message_id
            WHERE e.run_key = $run AND (e.test_id, e.attempt) > ($afterTest, $afterAttempt)
              {(status is null ? "" : "AND e.status = $status")}
            ORDER BY e.test_id, e.attempt LIMIT $limit;
            """);
        var run = command.Parameters.Add("$run", SqliteType.Integer);
        var afterTest = command.Parameters.Add("$afterTest", SqliteType.Integer);
        var afterAttempt = command.Parameters.Add("$afterAttempt", SqliteType.Integer);
        var remaining = command.Parameters.Add("$limit", SqliteType.Integer);
        if (status is { } wanted)
        {
            command.Parameters.AddWithValue("$status", (int)wanted);
        }

        var afterRow = after.RowKey == 0 ? rows[0].Key : after.RowKey;
        var executions = new List<RunExecution>(Math.Min(limit, 1024));
        foreach (var (key, shard) in rows)
        {
            if (key < afterRow || executions.Count >= limit)
            {
                continue;
            }

            // Within the row the cursor points into, after its place; every later row from its start.
            var position = key == afterRow ? after.TestAttempt : -1;
            run.Value = key;
            afterTest.Value = position >> 7;
            afterAttempt.Value = position & 0x7F;
            remaining.Value = limit - executions.Count;
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                executions.Add(new RunExecution(reader.GetInt64(0), new TestCase(
                    reader.GetString(4), reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6), Status(reader.GetInt32(2)),
                    reader.GetInt64(3), reader.GetInt32(1), reader.IsDBNull(7) ? null : reader.GetString(7)), key, shard.Length == 0 ? null : shard));
            }
        }

        return new(executions);
    }

    public ValueTask<IReadOnlyList<TestTotals>> WindowTotalsAsync(long projectKey, string branch, long sinceDay)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        // Summed in SQLite, then joined to the tests: one row per test crosses into .NET, not one per test and day.
        using var command = connection.Rent("""
            SELECT w.test_id, w.executions, w.failures, w.skipped, w.infra, w.retry_passes, w.flaky_commits,
                   w.last_ms, w.last_failed_ms, w.last_flaky_any_ms, w.duration_sum, w.duration_max, t.first_seen_ms, t.flaky_reset_ms,
                   w.last_ran_ms,
                   CASE WHEN t.flaky_reset_ms IS NOT NULL THEN
                       (SELECT sum(d.retry_passes + d.flaky_commits) FROM test_days AS d INDEXED BY test_days_by_test
                        WHERE d.test_id = w.test_id AND d.branch = $branch AND d.day >= $since AND d.last_flaky_ms > t.flaky_reset_ms)
                   END,
                   CASE WHEN t.flaky_reset_ms IS NOT NULL THEN
                       (SELECT max(d.last_flaky_ms) FROM test_days AS d INDEXED BY test_days_by_test
                        WHERE d.test_id = w.test_id AND d.branch = $branch AND d.day >= $since AND d.last_flaky_ms > t.flaky_reset_ms)
                   END
            FROM (
                SELECT test_id, sum(executions) AS executions, sum(failures) AS failures, sum(skipped) AS skipped, sum(infra) AS infra,
                       sum(retry_passes) AS retry_passes, sum(flaky_commits) AS flaky_commits, max(last_ms) AS last_ms,
                       max(last_ran_ms) AS last_ran_ms,
                       max(last_failed_ms) AS last_failed_ms, max(last_flaky_ms) AS last_flaky_any_ms,
                       sum(duration_sum) AS duration_sum, max(duration_max) AS duration_max
                FROM test_days WHERE project_id = $project AND branch = $branch AND day >= $since GROUP BY test_id
            ) AS w JOIN tests AS t ON t.id = w.test_id;
            """);
        command.Parameters.AddWithValue("$project", projectKey);
        command.Parameters.AddWithValue("$branch", branch);
        command.Parameters.AddWithValue("$since", sinceDay);
        var totals = new List<TestTotals>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            long? reset = reader.IsDBNull(13) ? null : reader.GetInt64(13);
            long? lastFlakyAny = reader.IsDBNull(9) ? null : reader.GetInt64(9);
            var retryPasses = reader.GetInt64(5);
            var flakyCommits = reader.GetInt64(6);

            // Without a reset every flake counts (the subqueries, which compare with the reset, only run for reset tests).
            var flakes = reset is null ? retryPasses + flakyCommits : reader.IsDBNull(15) ? 0 : reader.GetInt64(15);
            var lastFlaky = reset is null ? lastFlakyAny : reader.IsDBNull(16) ? null : reader.GetInt64(16);
            totals.Add(new TestTotals(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
                retryPasses, flakyCommits, flakes, reader.GetInt64(7), reader.IsDBNull(14) ? null : reader.GetInt64(14),
                reader.IsDBNull(8) ? null : reader.GetInt64(8), lastFlaky, lastFlakyAny,
                reader.GetInt64(10), reader.GetInt64(11), reader.GetInt64(12), reset));
        }

        return new(totals);
    }

    public ValueTask<IReadOnlyDictionary<long, Durations>> WindowDurationsAsync(long projectKey, string branch, long sinceDay, IReadOnlyCollection<long>? testIds)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        var durations = new Dictionary<long, Durations>(testIds?.Count ?? 1024);
        var merged = new DurationPercentiles();
        if (testIds is null)
        {
            // Every test: one pass over the window in test order through SQLite's C API (a blob read is a span, not
            // an array), merging each test's days into one scratch histogram.
            var db = connection.Handle!;
            using (var rented = connection.RentRaw("""
                SELECT test_id, duration_max, duration_sum, histogram FROM test_days
                WHERE project_id = ?1 AND branch = ?2 AND day >= ?3 ORDER BY test_id;
                """))
            {
                var statement = rented.Statement;
                raw.sqlite3_bind_int64(statement, 1, projectKey);
                raw.sqlite3_bind_text(statement, 2, branch);
                raw.sqlite3_bind_int64(statement, 3, sinceDay);
                long current = -1;
                int rc;
                while ((rc = raw.sqlite3_step(statement)) == raw.SQLITE_ROW)
                {
                    var test = raw.sqlite3_column_int64(statement, 0);
                    if (test != current && current >= 0)
                    {
                        durations[current] = merged.TakeResult();
                    }

                    current = test;
                    merged.Add(raw.sqlite3_column_blob(statement, 3), raw.sqlite3_column_int64(statement, 1), raw.sqlite3_column_int64(statement, 2));
                }

                RawSqlite.Check(db, rc);
                if (current >= 0)
                {
                    durations[current] = merged.TakeResult();
                }
            }

            return new(durations);
        }

        using var command = connection.Rent("""
            SELECT duration_max, duration_sum, histogram FROM test_days INDEXED BY test_days_by_test
            WHERE test_id = $test AND branch = $branch AND day >= $since AND project_id = $project;
            """);
        command.Parameters.AddWithValue("$project", projectKey);
        command.Parameters.AddWithValue("$branch", branch);
        command.Parameters.AddWithValue("$since", sinceDay);
        var id = command.Parameters.Add("$test", SqliteType.Integer);
        foreach (var testId in testIds)
        {
            id.Value = testId;
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                merged.Add((byte[])reader.GetValue(2), reader.GetInt64(0), reader.GetInt64(1));
            }

            durations[testId] = merged.TakeResult();
        }

        return new(durations);
    }

    public ValueTask<IReadOnlyList<TestDayRow>> TestDaysAsync(long testId, string branch, long sinceDay)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        using var command = connection.Rent($"""
            SELECT {DayColumns} FROM test_days INDEXED BY test_days_by_test
            WHERE test_id = $test AND branch = $branch AND day >= $since ORDER BY day;
            """);
        command.Parameters.AddWithValue("$test", testId);
        command.Parameters.AddWithValue("$branch", branch);
        command.Parameters.AddWithValue("$since", sinceDay);
        return new(ReadDays(command));
    }

    public ValueTask<IReadOnlyDictionary<long, TestInfo>> TestsAsync(long projectKey, IReadOnlyCollection<long> testIds)
    {
        var tests = new Dictionary<long, TestInfo>(testIds.Count);
        if (testIds.Count == 0)
        {
            return new(tests);
        }

        using var lease = _database.Read();

        var connection = lease.Connection;
        using var command = connection.Rent("""
            SELECT id, suite, name, file, first_seen_ms, flaky_reset_ms, flaky_reset_by FROM tests WHERE id = $id AND project_id = $project;
            """);
        command.Parameters.AddWithValue("$project", projectKey);
        var id = command.Parameters.Add("$id", SqliteType.Integer);
        foreach (var testId in testIds)
        {
            id.Value = testId;
            using var reader = command.ExecuteReader();
            if (reader.Read())
            {
                tests[testId] = new TestInfo(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3),
                    reader.GetInt64(4), reader.IsDBNull(5) ? null : reader.GetInt64(5), reader.IsDBNull(6) ? null : reader.GetString(6));
            }
        }

        return new(tests);
    }

    public ValueTask<TestExecutionPage> TestExecutionsAsync(long projectKey, long testId, RunPosition? before, int limit)
    {
        var executions = TestExecutions(projectKey, testId, before, limit, out var nextPage);
        return new(new TestExecutionPage(executions, nextPage));
    }

    private List<TestExecution> TestExecutions(long projectKey, long testId, RunPosition? before, int limit, out RunPosition? nextPage)
    {
        nextPage = null;
        var found = new List<TestExecution>(Math.Min(limit, 256));
        using var lease = _database.Read();
        var connection = lease.Connection;

        // The days it ran, newest first, each with the keys of the runs it ran in: no other run is looked at.
        using var days = connection.Rent("""
            SELECT day, runs FROM test_days INDEXED BY test_days_by_test
            WHERE test_id = $test AND branch = '' AND day <= $until AND project_id = $project ORDER BY day DESC;
            """);
        days.Parameters.AddWithValue("$test", testId);
        days.Parameters.AddWithValue("$project", projectKey);
        days.Parameters.AddWithValue("$until", before?.Day ?? long.MaxValue);
        var dayRuns = new List<(long Day, List<long> Keys)>();
        using (var reader = days.ExecuteReader())
        {
            while (reader.Read())
            {
                dayRuns.Add((reader.GetInt64(0), reader.IsDBNull(1) ? [] : RunKeys.Decode((byte[])reader.GetValue(1))));
            }
        }

        using var run = connection.Rent("SELECT run_id, timestamp_ms, branch, commit_sha FROM test_runs WHERE id = $run AND project_id = $project;");
        var runKey = run.Parameters.Add("$run", SqliteType.Integer);
        run.Parameters.AddWithValue("$project", projectKey);
        using var executions = connection.Rent("""
            SELECT e.attempt, e.status, e.duration_ms, m.message
            FROM executions AS e LEFT JOIN failure_messages AS m ON m.id = e.message_id
            WHERE e.run_key = $run AND e.test_id = $test ORDER BY e.attempt DESC;
            """);
        var executionRun = executions.Parameters.Add("$run", SqliteType.Integer);
        executions.Parameters.AddWithValue("$test", testId);

        RunPosition? last = null;
        foreach (var (day, keys) in dayRuns)
        {
            for (var i = keys.Count - 1; i >= 0; i--)
            {
                var key = keys[i];
                if (before is { } b && (day > b.Day || (day == b.Day && key >= b.RunKey)))
                {
                    continue;
                }

                if (found.Count >= limit)
                {
                    nextPage = last;
                    return found;
                }

                runKey.Value = key;
                using var runReader = run.ExecuteReader();
                if (!runReader.Read())
                {
                    continue; // purged since it was folded
                }

                last = new RunPosition(day, key);
                executionRun.Value = key;
                using var reader = executions.ExecuteReader();
                while (reader.Read())
                {
                    found.Add(new TestExecution(runReader.GetString(0), runReader.GetInt64(1), runReader.IsDBNull(2) ? null : runReader.GetString(2),
                        runReader.IsDBNull(3) ? null : runReader.GetString(3), Status(reader.GetInt32(1)), reader.GetInt64(2), reader.GetInt32(0),
                        reader.IsDBNull(3) ? null : reader.GetString(3)));
                }
            }
        }

        return found;
    }

    public ValueTask<IReadOnlyList<FailureOccurrence>> FailureOccurrencesAsync(long projectKey, long sinceDay, long? testId = null)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        using var command = connection.Rent("""
            SELECT group_id, test_id, sum(occurrences), min(first_ms), max(last_ms)
            FROM failure_days WHERE project_id = $project AND day >= $since AND ($test IS NULL OR test_id = $test)
            GROUP BY group_id, test_id;
            """);
        command.Parameters.AddWithValue("$project", projectKey);
        command.Parameters.AddWithValue("$since", sinceDay);
        command.Parameters.AddWithValue("$test", (object?)testId ?? DBNull.Value);
        var rows = new List<FailureOccurrence>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            rows.Add(new FailureOccurrence(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
        }

        return new(rows);
    }

    public ValueTask<IReadOnlyDictionary<long, FailureGroupInfo>> FailureGroupsAsync(long projectKey, IReadOnlyCollection<long> groupIds)
    {
        var groups = new Dictionary<long, FailureGroupInfo>(groupIds.Count);
        using var lease = _database.Read();
        var connection = lease.Connection;
        using var command = connection.Rent("""
            SELECT g.id, g.pattern, (SELECT m.message FROM failure_messages AS m INDEXED BY failure_messages_by_group
                                     WHERE m.group_id = g.id ORDER BY m.id DESC LIMIT 1)
            FROM failure_groups AS g WHERE g.id = $id AND g.project_id = $project;
            """);
        command.Parameters.AddWithValue("$project", projectKey);
        var id = command.Parameters.Add("$id", SqliteType.Integer);
        foreach (var groupId in groupIds)
        {
            id.Value = groupId;
            using var reader = command.ExecuteReader();
            if (reader.Read())
            {
                groups[groupId] = new FailureGroupInfo(groupId, reader.GetString(1), reader.IsDBNull(2) ? "" : reader.GetString(2));
            }
        }

        return new(groups);
    }

    public Task<bool> ResetFlakyAsync(long projectKey, long testId, long nowMs, string resetBy) =>
        _writes.RunAsync("reset_flaky", connection =>
        {
            using var command = connection.Rent("UPDATE tests SET flaky_reset_ms = $now, flaky_reset_by = $by WHERE id = $id AND project_id = $project;");
            command.Parameters.AddWithValue("$now", nowMs);
            command.Parameters.AddWithValue("$by", resetBy);
            command.Parameters.AddWithValue("$id", testId);
            command.Parameters.AddWithValue("$project", projectKey);
            return command.ExecuteNonQuery() == 1;
        });

    private const string DayColumns = """
        test_id, day, executions, failures, skipped, infra, retry_passes, flaky_commits, last_ms, last_failed_ms, last_flaky_ms,
        duration_sum, duration_max, histogram, last_ran_ms
        """;

    private static List<TestDayRow> ReadDays(RentedCommand command)
    {
        var rows = new List<TestDayRow>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            rows.Add(new TestDayRow(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
                reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7), reader.GetInt64(8), reader.IsDBNull(14) ? null : reader.GetInt64(14),
                reader.IsDBNull(9) ? null : reader.GetInt64(9),
                reader.IsDBNull(10) ? null : reader.GetInt64(10), reader.GetInt64(11), reader.GetInt64(12), (byte[])reader.GetValue(13)));
        }

        return rows;
    }


    private static TestCaseStatus Status(int stored) => stored is >= 0 and <= 3
        ? (TestCaseStatus)stored
        : throw new InvalidDataException($"executions holds an unknown status {stored}.");
}
