using FastIngest.TestAnalytics;
using Npgsql;

namespace FastIngest.Storage.Postgres;

/// <summary>
/// Folds runs into the per-test roll-ups on PostgreSQL with the rules every backend shares
/// (<see cref="TestRollupChunk"/>). Any node may fold, one at a time: a fold holds an advisory lock for its
/// transaction, takes the oldest runs queued in <c>runs_to_fold</c> (each ingest transaction queues what it stores),
/// and dequeues them in the transaction that writes their roll-ups, so every run is folded exactly once whichever
/// node commits it and in whatever order nodes commit. Run rows are never written by a fold (a purge or an upload
/// never waits on one). Reads on one node share the fold in flight, or the one queued after it (which sees everything
/// committed before the read asked).
/// </summary>
public sealed partial class PostgresTestRollups
{
    /// <summary>The advisory lock a folding node holds ("fi-tests" in ASCII); a purge's clean-up takes it too.</summary>
    internal const long LockKey = 0x66692d7465737473;

    /// <summary>Executions per fold transaction, as on SQLite: large enough that a day's rows are rewritten rarely.</summary>
    private const int ChunkExecutions = 50_000;

    private const int ChunkRuns = 2_000;

    /// <summary>Chunks a read's fold takes at most: a backlog (a restore, an upgrade) is the background loop's.</summary>
    private const int ReadChunks = 4;

    private readonly NpgsqlDataSource _db;
    private readonly TestStateRules _rules;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private Task<long> _current = Task.FromResult(0L);
    private Task<long>? _next;

    public PostgresTestRollups(PostgresDatabase database, TestStateRules rules, ILogger<PostgresTestRollups> logger)
    {
        _db = database.DataSource;
        _rules = rules;
        _logger = logger;
    }

    /// <summary>A fold failed; the roll-ups are derived data, so the next fold (a second later) catches up.</summary>
    public void LogFoldFailed(Exception exception) => Log.FoldFailed(_logger, exception);

    private static partial class Log
    {
        [LoggerMessage(EventId = 60, EventName = "test_fold_failed", Level = LogLevel.Warning,
            Message = "Folding runs into the per-test roll-ups failed; the next fold takes them again")]
        public static partial void FoldFailed(ILogger logger, Exception exception);
    }

    /// <summary>
    /// Folds what is pending (up to a bound); returns how many run rows. A caller arriving while a fold runs shares
    /// the one queued behind it, so a burst of reads costs at most two folds.
    /// </summary>
    public Task<long> FoldAsync()
    {
        lock (_gate)
        {
            if (_next is not null)
            {
                return _next;
            }

            if (_current.IsCompleted)
            {
                return _current = Task.Run(() => Fold(ReadChunks));
            }

            _next = _current.ContinueWith(_ =>
            {
                lock (_gate)
                {
                    _current = _next!;
                    _next = null;
                }

                return Fold(ReadChunks);
            }, CancellationToken.None, TaskContinuationOptions.DenyChildAttach, TaskScheduler.Default);
            return _next;
        }
    }

    /// <summary>Whether runs wait in the fold's queue (one index probe).</summary>
    public async Task<bool> PendingAsync(CancellationToken cancellation)
    {
        await using var command = _db.CreateCommand("SELECT EXISTS (SELECT 1 FROM runs_to_fold);");
        return (bool)(await command.ExecuteScalarAsync(cancellation))!;
    }

    /// <summary>Folds chunk after chunk, each its own transaction under the lock. Runs on a pool thread (synchronous I/O).</summary>
    private long Fold(int maxChunks)
    {
        using var connection = _db.OpenConnection();
        using (var pending = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM runs_to_fold);", connection))
        {
            if (!(bool)pending.ExecuteScalar()!)
            {
                return 0; // an idle read takes no lock at all
            }
        }

        long total = 0;
        for (var chunk = 0; chunk < maxChunks; chunk++)
        {
            var folded = FoldChunkRetrying(connection);
            total += folded;
            if (folded == 0)
            {
                break;
            }
        }

        return total;
    }

    /// <summary>
    /// A purge or deletion on another node can remove a test, group or run the chunk just read (a foreign key
    /// violation), or meet it in a deadlock: the chunk is read again, and the second time it no longer sees them.
    /// </summary>
    private int FoldChunkRetrying(NpgsqlConnection connection)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return FoldChunk(connection);
            }
            catch (PostgresException e) when (attempt < 3 && e.SqlState is PostgresErrorCodes.ForeignKeyViolation or PostgresErrorCodes.DeadlockDetected)
            {
            }
        }
    }

    private int FoldChunk(NpgsqlConnection connection)
    {
        using var transaction = connection.BeginTransaction(System.Data.IsolationLevel.ReadCommitted);
        // Another node folding (or a purge cleaning up) holds the lock: wait a little, then leave it to them and to the
        // next fold, so a read never waits long for roll-ups someone else is writing.
        Execute(connection, transaction, "SET LOCAL lock_timeout = '2s';");
        try
        {
            Execute(connection, transaction, $"SELECT pg_advisory_xact_lock({LockKey});");
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.LockNotAvailable)
        {
            return 0;
        }

        Execute(connection, transaction, "SET LOCAL lock_timeout = 0;");

        // Read after the lock, so this statement sees every fold committed before it (READ COMMITTED). A queued run
        // that a purge or deletion removed since has no row any more: it is dequeued with nothing to fold.
        var runs = new List<RunToFold>();
        var queued = new List<long>();
        using (var read = new NpgsqlCommand(
            """
            SELECT q.run_key, r.project_id, r.timestamp_ms, coalesce(r.branch, ''), r.commit_sha
            FROM (SELECT run_key FROM runs_to_fold ORDER BY run_key LIMIT $1) AS q
            LEFT JOIN test_runs AS r ON r.id = q.run_key
            ORDER BY q.run_key;
            """,
            connection, transaction))
        {
            read.Parameters.Add(new NpgsqlParameter { Value = ChunkRuns });
            using var reader = read.ExecuteReader();
            while (reader.Read())
            {
                queued.Add(reader.GetInt64(0));
                if (!reader.IsDBNull(1))
                {
                    runs.Add(new RunToFold(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetString(3),
                        reader.IsDBNull(4) ? null : reader.GetString(4)));
                }
            }
        }

        if (queued.Count == 0)
        {
            transaction.Commit();
            return 0;
        }

        var source = new PostgresTestFoldSource(connection, transaction);
        var fold = new TestRollupChunk(source, _rules);
        long executions = 0, last = queued[^1];
        foreach (var run in runs)
        {
            executions += fold.Add(run);
            if (executions >= ChunkExecutions)
            {
                last = run.Key; // the rest of the chunk waits for the next one
                break;
            }
        }

        SaveDays(connection, transaction, fold.Days);
        SaveFailures(connection, transaction, fold.Failures);
        SaveCommits(connection, transaction, fold.Commits);
        int dequeued;
        using (var dequeue = new NpgsqlCommand("DELETE FROM runs_to_fold WHERE run_key = ANY($1) AND run_key <= $2;", connection, transaction))
        {
            dequeue.Parameters.Add(new NpgsqlParameter { Value = queued.ToArray() });
            dequeue.Parameters.Add(new NpgsqlParameter { Value = last });
            dequeued = dequeue.ExecuteNonQuery();
        }

        transaction.Commit();
        return dequeued;
    }

    /// <summary>Reads the stored rows of the chunk's keys in one statement, merges, and writes them back in one upsert.</summary>
    private static void SaveDays(NpgsqlConnection connection, NpgsqlTransaction transaction, Dictionary<TestDayKey, TestDayRollup> days)
    {
        if (days.Count == 0)
        {
            return;
        }

        var ordered = days.Keys.OrderBy(static k => k.Project).ThenBy(static k => k.Branch, StringComparer.Ordinal)
            .ThenBy(static k => k.Day).ThenBy(static k => k.Test).ToArray();
        using (var read = new NpgsqlCommand(
            $"""
            SELECT project_id, branch, day, test_id, {TestDayRollup.StoredColumns}
            FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[]) AS k(p, b, d, t)
            JOIN test_days AS d ON d.project_id = k.p AND d.branch = k.b AND d.day = k.d AND d.test_id = k.t;
            """,
            connection, transaction))
        {
            AddKeyArrays(read, ordered);
            using var reader = read.ExecuteReader();
            while (reader.Read())
            {
                var key = new TestDayKey(reader.GetInt64(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3));
                days[key].AddStored(reader, 4);
            }
        }

        var n = ordered.Length;
        long[] executions = new long[n], failures = new long[n], skipped = new long[n], infra = new long[n], retry = new long[n],
            flaky = new long[n], last = new long[n], sum = new long[n], max = new long[n];
        long?[] lastRan = new long?[n], lastFailed = new long?[n], lastFlaky = new long?[n];
        byte[][] histograms = new byte[n][];
        byte[]?[] runs = new byte[n][];
        for (var i = 0; i < n; i++)
        {
            var row = days[ordered[i]];
            (executions[i], failures[i], skipped[i], infra[i], retry[i], flaky[i]) =
                (row.Executions, row.Failures, row.Skipped, row.Infra, row.RetryPasses, row.FlakyCommits);
            (last[i], sum[i], max[i], lastRan[i], lastFailed[i], lastFlaky[i]) =
                (row.LastMs, row.DurationSum, row.DurationMax, row.LastRanMs, row.LastFailedMs, row.LastFlakyMs);
            histograms[i] = row.Histogram.Encode();
            runs[i] = row.Runs.Count == 0 ? null : RunKeys.Encode(row.Runs);
        }

        using var write = new NpgsqlCommand(
            """
            INSERT INTO test_days (project_id, branch, day, test_id, executions, failures, skipped, infra, retry_passes, flaky_commits,
                                   last_ms, last_ran_ms, last_failed_ms, last_flaky_ms, duration_sum, duration_max, histogram, runs)
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
                                 $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[],
                                 $16::bigint[], $17::bytea[], $18::bytea[])
            ON CONFLICT (project_id, branch, day, test_id) DO UPDATE SET
                executions = EXCLUDED.executions, failures = EXCLUDED.failures, skipped = EXCLUDED.skipped, infra = EXCLUDED.infra,
                retry_passes = EXCLUDED.retry_passes, flaky_commits = EXCLUDED.flaky_commits, last_ms = EXCLUDED.last_ms,
                last_ran_ms = EXCLUDED.last_ran_ms, last_failed_ms = EXCLUDED.last_failed_ms, last_flaky_ms = EXCLUDED.last_flaky_ms,
                duration_sum = EXCLUDED.duration_sum, duration_max = EXCLUDED.duration_max, histogram = EXCLUDED.histogram, runs = EXCLUDED.runs;
            """,
            connection, transaction);
        AddKeyArrays(write, ordered);
        foreach (var values in new object[] { executions, failures, skipped, infra, retry, flaky, last, lastRan, lastFailed, lastFlaky, sum, max, histograms, runs })
        {
            write.Parameters.Add(new NpgsqlParameter { Value = values });
        }

        write.ExecuteNonQuery();
    }

    private static void AddKeyArrays(NpgsqlCommand command, TestDayKey[] keys)
    {
        command.Parameters.Add(new NpgsqlParameter { Value = keys.Select(static k => k.Project).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = keys.Select(static k => k.Branch).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = keys.Select(static k => k.Day).ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = keys.Select(static k => k.Test).ToArray() });
    }

    /// <summary>Failure occurrences add up in SQL: the counts are plain sums and the times are minimum and maximum.</summary>
    private static void SaveFailures(NpgsqlConnection connection, NpgsqlTransaction transaction, Dictionary<FailureDayKey, FailureDayRollup> failures)
    {
        if (failures.Count == 0)
        {
            return;
        }

        var ordered = failures.OrderBy(static f => f.Key.Project).ThenBy(static f => f.Key.Day).ThenBy(static f => f.Key.Group)
            .ThenBy(static f => f.Key.Test).ToArray();
        using var write = new NpgsqlCommand(
            """
            INSERT INTO failure_days (project_id, day, group_id, test_id, occurrences, first_ms, last_ms)
            SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
            ON CONFLICT (project_id, day, group_id, test_id) DO UPDATE SET
                occurrences = failure_days.occurrences + EXCLUDED.occurrences,
                first_ms = LEAST(failure_days.first_ms, EXCLUDED.first_ms),
                last_ms = GREATEST(failure_days.last_ms, EXCLUDED.last_ms);
            """,
            connection, transaction);
        foreach (var values in new long[][]
        {
            ordered.Select(static f => f.Key.Project).ToArray(), ordered.Select(static f => f.Key.Day).ToArray(),
            ordered.Select(static f => f.Key.Group).ToArray(), ordered.Select(static f => f.Key.Test).ToArray(),
            ordered.Select(static f => f.Value.Count).ToArray(), ordered.Select(static f => f.Value.FirstMs).ToArray(),
            ordered.Select(static f => f.Value.LastMs).ToArray(),
        })
        {
            write.Parameters.Add(new NpgsqlParameter { Value = values });
        }

        write.ExecuteNonQuery();
    }

    private static void SaveCommits(NpgsqlConnection connection, NpgsqlTransaction transaction,
        Dictionary<(long Project, string Commit), Dictionary<long, CommitFailure>> commits)
    {
        var changed = commits.SelectMany(static c => c.Value.Where(static t => t.Value.Changed)
            .Select(t => (c.Key.Project, c.Key.Commit, Test: t.Key, t.Value.Flaky, t.Value.LastMs))).ToArray();
        if (changed.Length == 0)
        {
            return;
        }

        using var write = new NpgsqlCommand(
            """
            INSERT INTO commit_failures (project_id, commit_sha, test_id, flaky, last_ms)
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::boolean[], $5::bigint[])
            ON CONFLICT (project_id, commit_sha, test_id) DO UPDATE SET flaky = EXCLUDED.flaky, last_ms = EXCLUDED.last_ms;
            """,
            connection, transaction);
        write.Parameters.Add(new NpgsqlParameter { Value = changed.Select(static c => c.Project).ToArray() });
        write.Parameters.Add(new NpgsqlParameter { Value = changed.Select(static c => c.Commit).ToArray() });
        write.Parameters.Add(new NpgsqlParameter { Value = changed.Select(static c => c.Test).ToArray() });
        write.Parameters.Add(new NpgsqlParameter { Value = changed.Select(static c => c.Flaky).ToArray() });
        write.Parameters.Add(new NpgsqlParameter { Value = changed.Select(static c => c.LastMs).ToArray() });
        write.ExecuteNonQuery();
    }

    private static void Execute(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection, transaction);
        command.ExecuteNonQuery();
    }

    /// <summary>The fold's look-ups, inside its transaction.</summary>
    private sealed class PostgresTestFoldSource(NpgsqlConnection connection, NpgsqlTransaction transaction) : ITestFoldSource
    {
        public void ReadExecutions(long runKey, List<FoldedExecution> into)
        {
            using var command = Command("SELECT test_id, attempt, status, duration_ms, message_id FROM executions WHERE run_key = $1 ORDER BY test_id, attempt;",
                runKey);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                into.Add(new FoldedExecution(reader.GetInt64(0), reader.GetInt32(1), (TestCaseStatus)reader.GetInt16(2), reader.GetInt64(3),
                    reader.IsDBNull(4) ? null : reader.GetInt64(4)));
            }
        }

        public void ReadCommitFailures(long projectKey, string commitSha, Dictionary<long, CommitFailure> into)
        {
            using var command = Command("SELECT test_id, flaky, last_ms FROM commit_failures WHERE project_id = $1 AND commit_sha = $2;",
                projectKey, commitSha);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                into[reader.GetInt64(0)] = new CommitFailure(reader.GetBoolean(1), reader.GetInt64(2), Changed: false);
            }
        }

        public void ReadEarlierRuns(long projectKey, string commitSha, long beforeRunKey, int limit, List<EarlierRun> into)
        {
            // Earlier: a lower key (folded before, or earlier in this chunk), or any run already folded. Nodes commit out
            // of key order, so a run with a higher key may have been folded first; each flake is still counted once
            // (the later fold of the pair finds the other here, or through commit_failures).
            using var command = Command(
                """
                SELECT id, count_total, count_failed, count_skipped FROM (
                    (SELECT id, count_total, count_failed, count_skipped FROM test_runs
                     WHERE project_id = $1 AND commit_sha = $2 AND id < $3 AND shards IS NULL ORDER BY id DESC LIMIT $4)
                    UNION ALL
                    (SELECT id, count_total, count_failed, count_skipped FROM test_runs AS r
                     WHERE project_id = $1 AND commit_sha = $2 AND id > $3 AND shards IS NULL
                       AND NOT EXISTS (SELECT 1 FROM runs_to_fold AS q WHERE q.run_key = r.id)
                     ORDER BY id DESC LIMIT $4)
                ) AS earlier ORDER BY id DESC LIMIT $4;
                """,
                projectKey, commitSha, beforeRunKey, limit);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                into.Add(new EarlierRun(reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetInt64(1),
                    reader.IsDBNull(2) ? 0 : reader.GetInt64(2), reader.IsDBNull(3) ? 0 : reader.GetInt64(3)));
            }
        }

        public bool PassedInAny(List<long> runKeys, long testId)
        {
            // One statement for all of them: each would be a round trip to the server.
            using var command = Command(
                """
                SELECT EXISTS (SELECT 1 FROM (
                    SELECT DISTINCT ON (run_key) status FROM executions WHERE run_key = ANY($1) AND test_id = $2 ORDER BY run_key, attempt DESC
                ) AS last WHERE last.status = $3);
                """,
                runKeys.ToArray(), testId, (short)TestCaseStatus.Passed);
            return (bool)command.ExecuteScalar()!;
        }

        public long? GroupOf(long messageId)
        {
            using var command = Command("SELECT group_id FROM failure_messages WHERE id = $1;", messageId);
            return command.ExecuteScalar() is long group ? group : null;
        }

        private NpgsqlCommand Command(string sql, params object[] values)
        {
            var command = new NpgsqlCommand(sql, connection, transaction);
            foreach (var value in values)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value });
            }

            return command;
        }
    }
}
