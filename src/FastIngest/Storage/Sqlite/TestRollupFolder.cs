using FastIngest.TestAnalytics;
using Microsoft.Data.Sqlite;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// Folds each run's executions, once, into per-test daily roll-ups (<c>test_days</c>, one row per project,
/// branch ('' = all), UTC day and test) and per-failure-group ones (<c>failure_days</c>), behind the watermark in
/// <c>test_rollup_state</c>. The rules of a fold, flake detection included, are <see cref="TestRollupChunk"/>'s
/// (shared with PostgreSQL); <c>commit_failures</c> holds the tests that failed on each commit. Every
/// per-test read then touches roll-up rows, never executions, so its cost follows tests x days, not history.
/// Invariant: every run with id &lt;= watermark is folded exactly once (the watermark commits with the rows).
/// </summary>
internal static class TestRollupFolder
{
    /// <summary>
    /// Executions folded per transaction: about 100 ms of the write lock. Smaller chunks hold the lock for less but
    /// rewrite the same roll-up pages more often (each chunk touches every test of its days), which grew the WAL
    /// to 670 MB during a 10M-execution ingest at 20,000.
    /// </summary>
    private const int ChunkExecutions = 50_000;

    private const int ChunkRuns = 2_000;

    /// <summary>
    /// Folds one chunk inside the caller's transaction: how far the watermark moved, in run ids, and whether the
    /// chunk was full (more may be pending). Only runs with test cases are read: they are found through the
    /// executions' key, one seek each, so runs without any (the seed API's plain runs, which fold to nothing) cost
    /// nothing at all. Reading every run held the writer for about 1.6 ms per 2,000 plain runs (#21's paced p99).
    /// </summary>
    public static FoldProgress FoldChunk(SqliteConnection connection, SqliteTransaction transaction, TestStateRules rules)
    {
        var watermark = FoldWatermark.Read(connection, FoldWatermark.Tests);
        var newest = connection.ScalarInt64("SELECT coalesce(max(id), 0) FROM test_runs;");
        if (newest <= watermark)
        {
            return default;
        }

        // A run's executions commit with its row (one transaction), so every run with test cases up to the newest
        // id is found here; each step is one seek on the executions' primary key (run_key, test_id, attempt). The
        // walk's keys are counted, not the joined rows, so a full chunk is never mistaken for the last one.
        var runs = new List<RunToFold>();
        var (keys, lastKey) = (0, watermark);
        using (var read = connection.Rent("""
            WITH RECURSIVE keyed(k) AS (
                SELECT (SELECT run_key FROM executions WHERE run_key > $watermark ORDER BY run_key LIMIT 1)
                UNION ALL
                SELECT (SELECT run_key FROM executions WHERE run_key > keyed.k ORDER BY run_key LIMIT 1) FROM keyed
                WHERE keyed.k IS NOT NULL AND keyed.k <= $newest
                LIMIT $limit
            )
            SELECT keyed.k, r.project_id, r.timestamp_ms, r.branch, r.commit_sha, r.id IS NOT NULL
            FROM keyed LEFT JOIN test_runs AS r ON r.id = keyed.k WHERE keyed.k <= $newest ORDER BY keyed.k;
            """))
        {
            read.Parameters.AddWithValue("$watermark", watermark);
            read.Parameters.AddWithValue("$newest", newest);
            read.Parameters.AddWithValue("$limit", ChunkRuns);
            using var reader = read.ExecuteReader();
            while (reader.Read())
            {
                (keys, lastKey) = (keys + 1, reader.GetInt64(0));
                if (reader.GetBoolean(5))
                {
                    runs.Add(new RunToFold(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2),
                        reader.IsDBNull(3) ? "" : reader.GetString(3), reader.IsDBNull(4) ? null : reader.GetString(4)));
                }
            }
        }

        // A full walk ends at its last key; a short one found every run with test cases: it covers all up to the newest.
        var full = keys == ChunkRuns;
        var last = full ? lastKey : newest;
        if (runs.Count == 0)
        {
            FoldWatermark.Move(connection, FoldWatermark.Tests, last);
            return new FoldProgress(last - watermark, full);
        }

        using var source = new SqliteTestFoldSource(connection);
        var chunk = new TestRollupChunk(source, rules);
        long executions = 0;
        foreach (var run in runs)
        {
            executions += chunk.Add(run);
            if (executions >= ChunkExecutions)
            {
                (last, full) = (run.Key, true);
                break;
            }
        }

        Save(connection, transaction, chunk);
        FoldWatermark.Move(connection, FoldWatermark.Tests, last);
        return new FoldProgress(last - watermark, full);
    }


    /// <summary>Merges the chunk into the stored rows: each key read once and written once.</summary>
    private static void Save(SqliteConnection connection, SqliteTransaction transaction, TestRollupChunk chunk)
    {
        using var readDay = connection.Rent($"""
            SELECT {TestDayRollup.StoredColumns}
            FROM test_days WHERE project_id = $p AND branch = $b AND day = $d AND test_id = $t;
            """);
        using var writeDay = connection.Rent("""
            INSERT OR REPLACE INTO test_days (project_id, branch, day, test_id, executions, failures, skipped, infra, retry_passes,
                flaky_commits, last_ms, last_ran_ms, last_failed_ms, last_flaky_ms, duration_sum, duration_max, histogram, runs)
            VALUES ($p, $b, $d, $t, $executions, $failures, $skipped, $infra, $retry, $flaky, $last, $lastRan, $lastFailed, $lastFlaky,
                $sum, $max, $histogram, $runs);
            """);
        foreach (var (key, row) in chunk.Days)
        {
            SetKey(readDay, key);
            using (var reader = readDay.ExecuteReader())
            {
                if (reader.Read())
                {
                    row.AddStored(reader, 0);
                }
            }

            SetKey(writeDay, key);
            writeDay.Parameters.AddWithValue("$executions", row.Executions);
            writeDay.Parameters.AddWithValue("$failures", row.Failures);
            writeDay.Parameters.AddWithValue("$skipped", row.Skipped);
            writeDay.Parameters.AddWithValue("$infra", row.Infra);
            writeDay.Parameters.AddWithValue("$retry", row.RetryPasses);
            writeDay.Parameters.AddWithValue("$flaky", row.FlakyCommits);
            writeDay.Parameters.AddWithValue("$last", row.LastMs);
            writeDay.Parameters.AddWithValue("$lastRan", (object?)row.LastRanMs ?? DBNull.Value);
            writeDay.Parameters.AddWithValue("$lastFailed", (object?)row.LastFailedMs ?? DBNull.Value);
            writeDay.Parameters.AddWithValue("$lastFlaky", (object?)row.LastFlakyMs ?? DBNull.Value);
            writeDay.Parameters.AddWithValue("$sum", row.DurationSum);
            writeDay.Parameters.AddWithValue("$max", row.DurationMax);
            writeDay.Parameters.AddWithValue("$histogram", row.Histogram.Encode());
            writeDay.Parameters.AddWithValue("$runs", row.Runs.Count == 0 ? DBNull.Value : RunKeys.Encode(row.Runs));
            writeDay.ExecuteNonQuery();
        }

        using var readFailure = connection.Rent("SELECT occurrences, first_ms, last_ms FROM failure_days WHERE project_id = $p AND day = $d AND group_id = $g AND test_id = $t;");
        using var writeFailure = connection.Rent("""
            INSERT OR REPLACE INTO failure_days (project_id, day, group_id, test_id, occurrences, first_ms, last_ms)
            VALUES ($p, $d, $g, $t, $n, $first, $last);
            """);
        foreach (var (key, occurrences) in chunk.Failures)
        {
            var (count, first, last) = (occurrences.Count, occurrences.FirstMs, occurrences.LastMs);
            SetFailureKey(readFailure, key);
            using (var reader = readFailure.ExecuteReader())
            {
                if (reader.Read())
                {
                    count += reader.GetInt64(0);
                    first = Math.Min(first, reader.GetInt64(1));
                    last = Math.Max(last, reader.GetInt64(2));
                }
            }

            SetFailureKey(writeFailure, key);
            writeFailure.Parameters.AddWithValue("$n", count);
            writeFailure.Parameters.AddWithValue("$first", first);
            writeFailure.Parameters.AddWithValue("$last", last);
            writeFailure.ExecuteNonQuery();
        }

        using var writeCommit = connection.Rent("INSERT OR REPLACE INTO commit_failures (project_id, commit_sha, test_id, flaky, last_ms) VALUES ($p, $c, $t, $f, $l);");
        foreach (var ((project, commitSha), tests) in chunk.Commits)
        {
            foreach (var (test, failure) in tests)
            {
                if (!failure.Changed)
                {
                    continue;
                }

                writeCommit.Parameters.Clear();
                writeCommit.Parameters.AddWithValue("$p", project);
                writeCommit.Parameters.AddWithValue("$c", commitSha);
                writeCommit.Parameters.AddWithValue("$t", test);
                writeCommit.Parameters.AddWithValue("$f", failure.Flaky ? 1 : 0);
                writeCommit.Parameters.AddWithValue("$l", failure.LastMs);
                writeCommit.ExecuteNonQuery();
            }
        }
    }

    private static void SetKey(RentedCommand command, TestDayKey key)
    {
        command.Parameters.Clear();
        command.Parameters.AddWithValue("$p", key.Project);
        command.Parameters.AddWithValue("$b", key.Branch);
        command.Parameters.AddWithValue("$d", key.Day);
        command.Parameters.AddWithValue("$t", key.Test);
    }

    private static void SetFailureKey(RentedCommand command, FailureDayKey key)
    {
        command.Parameters.Clear();
        command.Parameters.AddWithValue("$p", key.Project);
        command.Parameters.AddWithValue("$d", key.Day);
        command.Parameters.AddWithValue("$g", key.Group);
        command.Parameters.AddWithValue("$t", key.Test);
    }

    /// <summary>
    /// The fold's look-ups as prepared SQLite statements, inside the fold's transaction. Reading a run's executions
    /// happens once per run, so it goes through SQLite's C API (no reader, record, binder or boxed key per run: about
    /// 350 bytes per run of garbage, measured with an allocation profile of the ingest load, #21).
    /// </summary>
    private sealed class SqliteTestFoldSource : ITestFoldSource, IDisposable
    {
        private readonly SQLitePCL.sqlite3 _db;
        private readonly RentedStatement _readRunRented;
        private readonly SQLitePCL.sqlite3_stmt _readRun;
        private readonly RentedCommand _earlierRuns, _passedIn, _commitFailures, _groupOf;

        public SqliteTestFoldSource(SqliteConnection connection)
        {
            _db = connection.Handle!;
            _readRunRented = connection.RentRaw(
                "SELECT test_id, attempt, status, duration_ms, message_id FROM executions WHERE run_key = ?1 ORDER BY test_id, attempt;");
            _readRun = _readRunRented.Statement;
            _earlierRuns = connection.Rent("""
                SELECT id, count_total, count_failed, count_skipped FROM test_runs INDEXED BY test_runs_by_commit
                WHERE project_id = $project AND commit_sha = $commit AND id < $run AND shards IS NULL ORDER BY id DESC LIMIT $limit;
                """);
            _earlierRuns.Parameters.Add("$project", SqliteType.Integer);
            _earlierRuns.Parameters.Add("$commit", SqliteType.Text);
            _earlierRuns.Parameters.Add("$run", SqliteType.Integer);
            _earlierRuns.Parameters.Add("$limit", SqliteType.Integer);
            _passedIn = connection.Rent("SELECT status FROM executions WHERE run_key = $run AND test_id = $test ORDER BY attempt DESC LIMIT 1;");
            _passedIn.Parameters.Add("$run", SqliteType.Integer);
            _passedIn.Parameters.Add("$test", SqliteType.Integer);
            _commitFailures = connection.Rent("SELECT test_id, flaky, last_ms FROM commit_failures WHERE project_id = $project AND commit_sha = $commit;");
            _commitFailures.Parameters.Add("$project", SqliteType.Integer);
            _commitFailures.Parameters.Add("$commit", SqliteType.Text);
            _groupOf = connection.Rent("SELECT group_id FROM failure_messages WHERE id = $id;");
            _groupOf.Parameters.Add("$id", SqliteType.Integer);
        }

        public void ReadExecutions(long runKey, List<FoldedExecution> into)
        {
            SQLitePCL.raw.sqlite3_bind_int64(_readRun, 1, runKey);
            try
            {
                int rc;
                while ((rc = SQLitePCL.raw.sqlite3_step(_readRun)) == SQLitePCL.raw.SQLITE_ROW)
                {
                    into.Add(new FoldedExecution(SQLitePCL.raw.sqlite3_column_int64(_readRun, 0), SQLitePCL.raw.sqlite3_column_int(_readRun, 1),
                        (TestCaseStatus)SQLitePCL.raw.sqlite3_column_int(_readRun, 2), SQLitePCL.raw.sqlite3_column_int64(_readRun, 3),
                        SQLitePCL.raw.sqlite3_column_type(_readRun, 4) == SQLitePCL.raw.SQLITE_NULL ? null : SQLitePCL.raw.sqlite3_column_int64(_readRun, 4)));
                }

                RawSqlite.Check(_db, rc);
            }
            finally
            {
                SQLitePCL.raw.sqlite3_reset(_readRun);
            }
        }

        public void ReadCommitFailures(long projectKey, string commitSha, Dictionary<long, CommitFailure> into)
        {
            _commitFailures.Parameters["$project"].Value = projectKey;
            _commitFailures.Parameters["$commit"].Value = commitSha;
            using var reader = _commitFailures.ExecuteReader();
            while (reader.Read())
            {
                into[reader.GetInt64(0)] = new CommitFailure(reader.GetInt64(1) != 0, reader.GetInt64(2), Changed: false);
            }
        }

        public void ReadEarlierRuns(long projectKey, string commitSha, long beforeRunKey, int limit, List<EarlierRun> into)
        {
            _earlierRuns.Parameters["$project"].Value = projectKey;
            _earlierRuns.Parameters["$commit"].Value = commitSha;
            _earlierRuns.Parameters["$run"].Value = beforeRunKey;
            _earlierRuns.Parameters["$limit"].Value = limit;
            using var reader = _earlierRuns.ExecuteReader();
            while (reader.Read())
            {
                into.Add(new EarlierRun(reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetInt64(1),
                    reader.IsDBNull(2) ? 0 : reader.GetInt64(2), reader.IsDBNull(3) ? 0 : reader.GetInt64(3)));
            }
        }

        public bool PassedInAny(List<long> runKeys, long testId)
        {
            // In process, one prepared look-up per run costs no round trip; it stops at the first pass.
            _passedIn.Parameters["$test"].Value = testId;
            foreach (var runKey in runKeys)
            {
                _passedIn.Parameters["$run"].Value = runKey;
                if (_passedIn.ExecuteScalar() is long status && status == (long)TestCaseStatus.Passed)
                {
                    return true;
                }
            }

            return false;
        }

        public long? GroupOf(long messageId)
        {
            _groupOf.Parameters["$id"].Value = messageId;
            return _groupOf.ExecuteScalar() is long found ? found : null;
        }

        public void Dispose()
        {
            _readRunRented.Dispose();
            _earlierRuns.Dispose();
            _passedIn.Dispose();
            _commitFailures.Dispose();
            _groupOf.Dispose();
        }
    }
}
