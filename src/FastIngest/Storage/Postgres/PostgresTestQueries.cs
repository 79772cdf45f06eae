using Npgsql;

namespace FastIngest.Storage.Postgres;

/// <summary>
/// Per-test reads on PostgreSQL: the same roll-up rows and the same answers as on SQLite. Window reads scan
/// <c>test_days</c> by its key prefix (project, branch, day); one test's history goes through
/// <c>test_days_by_test</c> to the runs it appeared in, then to its executions by primary key.
/// </summary>
public sealed class PostgresTestQueries : ITestQueries
{
    private readonly NpgsqlDataSource _db;
    private readonly PostgresTestRollups _rollups;

    public PostgresTestQueries(PostgresDatabase database, PostgresTestRollups rollups)
    {
        _db = database.DataSource;
        _rollups = rollups;
    }

    /// <summary>
    /// Folds what is pending before a read. A fold that fails (the database busy past the command timeout, a
    /// conflict that outlived its retries) is logged and the read answers from the roll-ups as they are: derived
    /// data a moment behind, never a 500 for the reader; the background loop folds it again.
    /// </summary>
    public async Task FoldPendingAsync()
    {
        try
        {
            await _rollups.FoldAsync();
        }
        catch (Exception e) when (e is System.Data.Common.DbException or TimeoutException or InvalidOperationException or IOException)
        {
            _rollups.LogFoldFailed(e);
        }
    }

    public async ValueTask<IReadOnlyList<RunExecution>?> ListRunExecutionsAsync(long projectKey, string runId, TestCaseStatus? status, ExecutionPosition after, int limit)
    {
        await using var connection = await _db.OpenConnectionAsync();
        // The rows that carry executions: the run itself, or each of its shards (never a sharded run's head).
        var rows = new List<(long Key, string Shard)>();
        await using (var find = Command(connection, "SELECT id, shard FROM test_runs WHERE project_id = $1 AND run_id = $2 AND shards IS NULL ORDER BY id;",
            projectKey, runId))
        await using (var reader = await find.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                rows.Add((reader.GetInt64(0), reader.GetString(1)));
            }
        }

        if (rows.Count == 0)
        {
            return null;
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
            await using var command = Command(connection,
                """
                SELECT e.test_id, e.attempt, e.status, e.duration_ms, t.suite, t.name, t.file, m.message
                FROM executions AS e
                JOIN tests AS t ON t.id = e.test_id
                LEFT JOIN failure_messages AS m ON m.id = e.message_id
                WHERE e.run_key = $1 AND (e.test_id, e.attempt) > ($2, $3) AND ($4::smallint IS NULL OR e.status = $4)
                ORDER BY e.test_id, e.attempt LIMIT $5;
                """,
                key, position >> 7, (int)(position & 0x7F), status is { } wanted ? (short)wanted : (object)DBNull.Value, limit - executions.Count);
            command.Parameters[3].NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Smallint;
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                executions.Add(new RunExecution(reader.GetInt64(0), new TestCase(
                    reader.GetString(4), reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6), Status(reader.GetInt16(2)),
                    reader.GetInt64(3), reader.GetInt32(1), reader.IsDBNull(7) ? null : reader.GetString(7)), key, shard.Length == 0 ? null : shard));
            }
        }

        return executions;
    }

    public async ValueTask<IReadOnlyList<TestTotals>> WindowTotalsAsync(long projectKey, string branch, long sinceDay)
    {
        await using var connection = await _db.OpenConnectionAsync();
        // Summed in the database, then joined to the tests: one row per test crosses over, not one per test and day.
        await using var command = Command(connection,
            """
            SELECT w.test_id, w.executions, w.failures, w.skipped, w.infra, w.retry_passes, w.flaky_commits,
                   w.last_ms, w.last_failed_ms, w.last_flaky_any_ms, w.duration_sum, w.duration_max, t.first_seen_ms, t.flaky_reset_ms,
                   w.last_ran_ms,
                   CASE WHEN t.flaky_reset_ms IS NOT NULL THEN
                       (SELECT sum(d.retry_passes + d.flaky_commits)::bigint FROM test_days AS d
                        WHERE d.test_id = w.test_id AND d.branch = $2 AND d.day >= $3 AND d.last_flaky_ms > t.flaky_reset_ms)
                   END,
                   CASE WHEN t.flaky_reset_ms IS NOT NULL THEN
                       (SELECT max(d.last_flaky_ms) FROM test_days AS d
                        WHERE d.test_id = w.test_id AND d.branch = $2 AND d.day >= $3 AND d.last_flaky_ms > t.flaky_reset_ms)
                   END
            FROM (
                SELECT test_id, sum(executions)::bigint AS executions, sum(failures)::bigint AS failures, sum(skipped)::bigint AS skipped,
                       sum(infra)::bigint AS infra, sum(retry_passes)::bigint AS retry_passes, sum(flaky_commits)::bigint AS flaky_commits,
                       max(last_ms) AS last_ms, max(last_ran_ms) AS last_ran_ms, max(last_failed_ms) AS last_failed_ms,
                       max(last_flaky_ms) AS last_flaky_any_ms, sum(duration_sum)::bigint AS duration_sum, max(duration_max) AS duration_max
                FROM test_days WHERE project_id = $1 AND branch = $2 AND day >= $3 GROUP BY test_id
            ) AS w JOIN tests AS t ON t.id = w.test_id;
            """,
            projectKey, branch, sinceDay);
        var totals = new List<TestTotals>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            long? reset = NullableInt64(reader, 13);
            long? lastFlakyAny = NullableInt64(reader, 9);
            var retryPasses = reader.GetInt64(5);
            var flakyCommits = reader.GetInt64(6);

            // Without a reset every flake counts (the subqueries, which compare with the reset, only run for reset tests).
            var flakes = reset is null ? retryPasses + flakyCommits : NullableInt64(reader, 15) ?? 0;
            var lastFlaky = reset is null ? lastFlakyAny : NullableInt64(reader, 16);
            totals.Add(new TestTotals(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
                retryPasses, flakyCommits, flakes, reader.GetInt64(7), NullableInt64(reader, 14), NullableInt64(reader, 8), lastFlaky, lastFlakyAny,
                reader.GetInt64(10), reader.GetInt64(11), reader.GetInt64(12), reset));
        }

        return totals;
    }

    public async ValueTask<IReadOnlyDictionary<long, Durations>> WindowDurationsAsync(long projectKey, string branch, long sinceDay, IReadOnlyCollection<long>? testIds)
    {
        await using var connection = await _db.OpenConnectionAsync();
        // One pass in test order, merging each test's days into one scratch histogram.
        await using var command = Command(connection,
            """
            SELECT test_id, duration_max, duration_sum, histogram FROM test_days
            WHERE project_id = $1 AND branch = $2 AND day >= $3 AND ($4::bigint[] IS NULL OR test_id = ANY($4))
            ORDER BY test_id;
            """,
            projectKey, branch, sinceDay, testIds is null ? (object)DBNull.Value : testIds.ToArray());
        command.Parameters[3].NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Bigint;
        var durations = new Dictionary<long, Durations>(testIds?.Count ?? 1024);
        var merged = new DurationPercentiles();
        long current = -1;
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                var test = reader.GetInt64(0);
                if (test != current && current >= 0)
                {
                    durations[current] = merged.TakeResult();
                }

                current = test;
                merged.Add(reader.GetFieldValue<byte[]>(3), reader.GetInt64(1), reader.GetInt64(2));
            }
        }

        if (current >= 0)
        {
            durations[current] = merged.TakeResult();
        }

        // A named test without a row in the window has no samples (as on SQLite).
        foreach (var testId in testIds ?? [])
        {
            durations.TryAdd(testId, merged.TakeResult());
        }

        return durations;
    }

    public async ValueTask<IReadOnlyDictionary<long, TestInfo>> TestsAsync(long projectKey, IReadOnlyCollection<long> testIds)
    {
        var tests = new Dictionary<long, TestInfo>(testIds.Count);
        if (testIds.Count == 0)
        {
            return tests;
        }

        await using var connection = await _db.OpenConnectionAsync();
        await using var command = Command(connection,
            "SELECT id, suite, name, file, first_seen_ms, flaky_reset_ms, flaky_reset_by FROM tests WHERE id = ANY($2) AND project_id = $1;",
            projectKey, testIds.ToArray());
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            tests[reader.GetInt64(0)] = new TestInfo(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), NullableString(reader, 3),
                reader.GetInt64(4), NullableInt64(reader, 5), NullableString(reader, 6));
        }

        return tests;
    }

    public async ValueTask<IReadOnlyList<TestDayRow>> TestDaysAsync(long testId, string branch, long sinceDay)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await using var command = Command(connection,
            """
            SELECT test_id, day, executions, failures, skipped, infra, retry_passes, flaky_commits, last_ms, last_failed_ms, last_flaky_ms,
                   duration_sum, duration_max, histogram, last_ran_ms
            FROM test_days WHERE test_id = $1 AND branch = $2 AND day >= $3 ORDER BY day;
            """,
            testId, branch, sinceDay);
        var rows = new List<TestDayRow>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(new TestDayRow(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
                reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7), reader.GetInt64(8), NullableInt64(reader, 14),
                NullableInt64(reader, 9), NullableInt64(reader, 10), reader.GetInt64(11), reader.GetInt64(12), reader.GetFieldValue<byte[]>(13)));
        }

        return rows;
    }

    public async ValueTask<TestExecutionPage> TestExecutionsAsync(long projectKey, long testId, RunPosition? before, int limit)
    {
        await using var connection = await _db.OpenConnectionAsync();

        // The days it ran, newest first, each with the keys of the runs it ran in: no other run is looked at.
        var candidates = new List<RunPosition>();
        await using (var days = Command(connection,
            "SELECT day, runs FROM test_days WHERE test_id = $1 AND branch = '' AND day <= $2 AND project_id = $3 ORDER BY day DESC;",
            testId, before?.Day ?? long.MaxValue, projectKey))
        await using (var reader = await days.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                var day = reader.GetInt64(0);
                var keys = reader.IsDBNull(1) ? [] : RunKeys.Decode(reader.GetFieldValue<byte[]>(1));
                for (var i = keys.Count - 1; i >= 0; i--)
                {
                    if (before is not { } b || day < b.Day || (day == b.Day && keys[i] < b.RunKey))
                    {
                        candidates.Add(new RunPosition(day, keys[i]));
                    }
                }
            }
        }

        // Runs are read a page's worth at a time (one statement for the runs, one for their executions); a run
        // purged since it was folded is passed over.
        var found = new List<TestExecution>(Math.Min(limit, 256));
        RunPosition? last = null;
        for (var start = 0; start < candidates.Count; start += limit)
        {
            var batch = candidates.GetRange(start, Math.Min(limit, candidates.Count - start));
            var keys = batch.Select(static c => c.RunKey).ToArray();
            var runs = new Dictionary<long, (string RunId, long TimestampMs, string? Branch, string? CommitSha)>();
            await using (var command = Command(connection,
                "SELECT id, run_id, timestamp_ms, branch, commit_sha FROM test_runs WHERE id = ANY($1) AND project_id = $2;", keys, projectKey))
            await using (var reader = await command.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    runs[reader.GetInt64(0)] = (reader.GetString(1), reader.GetInt64(2), NullableString(reader, 3), NullableString(reader, 4));
                }
            }

            var attempts = new Dictionary<long, List<(int Attempt, TestCaseStatus Status, long DurationMs, string? Message)>>();
            await using (var command = Command(connection,
                """
                SELECT e.run_key, e.attempt, e.status, e.duration_ms, m.message
                FROM executions AS e LEFT JOIN failure_messages AS m ON m.id = e.message_id
                WHERE e.run_key = ANY($1) AND e.test_id = $2 ORDER BY e.run_key, e.attempt DESC;
                """,
                keys, testId))
            await using (var reader = await command.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    var key = reader.GetInt64(0);
                    if (!attempts.TryGetValue(key, out var list))
                    {
                        attempts[key] = list = [];
                    }

                    list.Add((reader.GetInt32(1), Status(reader.GetInt16(2)), reader.GetInt64(3), NullableString(reader, 4)));
                }
            }

            foreach (var position in batch)
            {
                if (found.Count >= limit)
                {
                    return new TestExecutionPage(found, last);
                }

                if (!runs.TryGetValue(position.RunKey, out var run))
                {
                    continue; // purged since it was folded
                }

                last = position;
                foreach (var (attempt, status, durationMs, message) in attempts.GetValueOrDefault(position.RunKey) ?? [])
                {
                    found.Add(new TestExecution(run.RunId, run.TimestampMs, run.Branch, run.CommitSha, status, durationMs, attempt, message));
                }
            }
        }

        return new TestExecutionPage(found, null);
    }

    public async ValueTask<IReadOnlyList<FailureOccurrence>> FailureOccurrencesAsync(long projectKey, long sinceDay, long? testId = null)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await using var command = Command(connection,
            """
            SELECT group_id, test_id, sum(occurrences)::bigint, min(first_ms), max(last_ms)
            FROM failure_days WHERE project_id = $1 AND day >= $2 AND ($3::bigint IS NULL OR test_id = $3)
            GROUP BY group_id, test_id;
            """,
            projectKey, sinceDay, testId is { } id ? id : (object)DBNull.Value);
        command.Parameters[2].NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint;
        var rows = new List<FailureOccurrence>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(new FailureOccurrence(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
        }

        return rows;
    }

    public async ValueTask<IReadOnlyDictionary<long, FailureGroupInfo>> FailureGroupsAsync(long projectKey, IReadOnlyCollection<long> groupIds)
    {
        var groups = new Dictionary<long, FailureGroupInfo>(groupIds.Count);
        await using var connection = await _db.OpenConnectionAsync();
        await using var command = Command(connection,
            """
            SELECT g.id, g.pattern, (SELECT m.message FROM failure_messages AS m WHERE m.group_id = g.id ORDER BY m.id DESC LIMIT 1)
            FROM failure_groups AS g WHERE g.id = ANY($2) AND g.project_id = $1;
            """,
            projectKey, groupIds.ToArray());
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            groups[reader.GetInt64(0)] = new FailureGroupInfo(reader.GetInt64(0), reader.GetString(1), NullableString(reader, 2) ?? "");
        }

        return groups;
    }

    public async Task<bool> ResetFlakyAsync(long projectKey, long testId, long nowMs, string resetBy)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await using var command = Command(connection,
            "UPDATE tests SET flaky_reset_ms = $1, flaky_reset_by = $2 WHERE id = $3 AND project_id = $4;", nowMs, resetBy, testId, projectKey);
        return await command.ExecuteNonQueryAsync() == 1;
    }

    private static NpgsqlCommand Command(NpgsqlConnection connection, string sql, params object[] values)
    {
        var command = new NpgsqlCommand(sql, connection);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        return command;
    }

    private static long? NullableInt64(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetInt64(ordinal);

    private static string? NullableString(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private static TestCaseStatus Status(short stored) => stored is >= 0 and <= 3
        ? (TestCaseStatus)stored
        : throw new InvalidDataException($"executions holds an unknown status {stored}.");
}
