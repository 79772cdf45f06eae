using FastIngest.TestAnalytics;
using Microsoft.Data.Sqlite;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// Folds each run's executions, once, into per-test daily roll-ups (<c>test_days</c>, one row per project,
/// branch ('' = all), UTC day and test) and per-failure-group ones (<c>failure_days</c>), behind the watermark in
/// <c>test_rollup_state</c>. Flake detection happens here, when a run is folded: a retry inside the run that
/// turned a failure into a pass, or an outcome that differs from an earlier run of the same commit (checked
/// through <c>commit_failures</c>, which holds the tests that failed on each commit: a pass is a flake when its
/// test failed on the commit before, a first failure is one when any earlier run of the commit passed it). Every
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

    /// <summary>Folds one chunk inside the caller's transaction; returns how many runs it folded.</summary>
    public static int FoldChunk(SqliteConnection connection, SqliteTransaction transaction, TestStateRules rules)
    {
        var watermark = Scalar(connection, transaction, "SELECT last_run_id FROM test_rollup_state WHERE id = 1;");
        var runs = new List<RunToFold>();
        using (var read = Command(connection, transaction, """
            SELECT id, project_id, timestamp_ms, branch, commit_sha FROM test_runs WHERE id > $watermark ORDER BY id LIMIT $limit;
            """))
        {
            read.Parameters.AddWithValue("$watermark", watermark);
            read.Parameters.AddWithValue("$limit", ChunkRuns);
            using var reader = read.ExecuteReader();
            while (reader.Read())
            {
                runs.Add(new RunToFold(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2),
                    reader.IsDBNull(3) ? "" : reader.GetString(3), reader.IsDBNull(4) ? null : reader.GetString(4)));
            }
        }

        if (runs.Count == 0)
        {
            return 0;
        }

        var fold = new Fold(connection, transaction, rules);
        var folded = 0;
        long last = watermark, executions = 0;
        foreach (var run in runs)
        {
            executions += fold.Add(run);
            last = run.Key;
            folded++;
            if (executions >= ChunkExecutions)
            {
                break;
            }
        }

        fold.Save();
        using (var move = Command(connection, transaction, "UPDATE test_rollup_state SET last_run_id = $last WHERE id = 1;"))
        {
            move.Parameters.AddWithValue("$last", last);
            move.ExecuteNonQuery();
        }

        fold.Dispose();
        return folded;
    }

    private static long Scalar(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        using var command = Command(connection, transaction, sql);
        return (long)command.ExecuteScalar()!;
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    private sealed record RunToFold(long Key, long ProjectKey, long TimestampMs, string Branch, string? CommitSha);

    /// <summary>A test's outcome in one run: its last attempt decides; an earlier failed attempt makes a pass a retry pass.</summary>
    private struct Outcome
    {
        public long TestId;
        public TestCaseStatus Final;
        public bool FailedBefore;
    }

    /// <summary>One chunk's roll-ups, accumulated in memory and merged into the tables once.</summary>
    private sealed class Fold : IDisposable
    {
        private readonly SqliteConnection _connection;
        private readonly SqliteTransaction _transaction;
        private readonly TestStateRules _rules;
        private readonly SqliteCommand _readRun, _earlierRuns, _passedIn, _commitFailures, _groupOf;
        private readonly Dictionary<(long Project, string Branch, long Day, long Test), Day> _days = [];
        private readonly Dictionary<(long Project, long Day, long Group, long Test), Occurrences> _failures = [];
        private readonly Dictionary<long, long> _groups = [];
        private readonly Dictionary<(long Project, string Commit), Dictionary<long, CommitFailure>> _commits = [];
        private readonly List<(long TestId, int Attempt, TestCaseStatus Status, long DurationMs, long? MessageId)> _rows = [];
        private readonly List<Outcome> _outcomes = [];

        public Fold(SqliteConnection connection, SqliteTransaction transaction, TestStateRules rules)
        {
            _connection = connection;
            _transaction = transaction;
            _rules = rules;
            _readRun = Command(connection, transaction,
                "SELECT test_id, attempt, status, duration_ms, message_id FROM executions WHERE run_key = $run ORDER BY test_id, attempt;");
            _readRun.Parameters.Add("$run", SqliteType.Integer);
            _earlierRuns = Command(connection, transaction, """
                SELECT id, count_total, count_failed, count_skipped FROM test_runs INDEXED BY test_runs_by_commit
                WHERE project_id = $project AND commit_sha = $commit AND id < $run AND shards IS NULL ORDER BY id DESC LIMIT $limit;
                """);
            _earlierRuns.Parameters.Add("$project", SqliteType.Integer);
            _earlierRuns.Parameters.Add("$commit", SqliteType.Text);
            _earlierRuns.Parameters.Add("$run", SqliteType.Integer);
            _earlierRuns.Parameters.AddWithValue("$limit", TestStateRules.MaxCommitRuns);
            _passedIn = Command(connection, transaction,
                "SELECT status FROM executions WHERE run_key = $run AND test_id = $test ORDER BY attempt DESC LIMIT 1;");
            _passedIn.Parameters.Add("$run", SqliteType.Integer);
            _passedIn.Parameters.Add("$test", SqliteType.Integer);
            _commitFailures = Command(connection, transaction,
                "SELECT test_id, flaky, last_ms FROM commit_failures WHERE project_id = $project AND commit_sha = $commit;");
            _commitFailures.Parameters.Add("$project", SqliteType.Integer);
            _commitFailures.Parameters.Add("$commit", SqliteType.Text);
            _groupOf = Command(connection, transaction, "SELECT group_id FROM failure_messages WHERE id = $id;");
            _groupOf.Parameters.Add("$id", SqliteType.Integer);
        }

        /// <summary>Folds one run; returns how many executions it read.</summary>
        public long Add(RunToFold run)
        {
            var rowCount = ReadRun(run.Key, _rows);
            if (rowCount == 0)
            {
                return 0;
            }

            var (ran, failed) = Outcomes(_rows, _outcomes);
            var infra = _rules.IsInfrastructureFailure(ran, failed);
            var day = DailyRollups.DayOf(run.TimestampMs);
            var commit = infra || run.CommitSha is null ? null : CommitFailures(run.ProjectKey, run.CommitSha);
            List<long>? earlier = null;

            foreach (var outcome in _outcomes)
            {
                var flakyCommit = commit is not null && outcome.Final != TestCaseStatus.Skipped
                    && IsNewFlakyCommit(run, outcome, commit, ref earlier);
                Record(run, day, "", outcome, infra, flakyCommit);
                if (run.Branch.Length > 0)
                {
                    Record(run, day, run.Branch, outcome, infra, flakyCommit);
                }
            }

            // Durations of every attempt that ran; failure groups count every failed attempt, infrastructure runs too
            // (a broken dependency is exactly what a failure group should show).
            foreach (var (testId, _, status, durationMs, messageId) in _rows)
            {
                if (status != TestCaseStatus.Skipped && !infra)
                {
                    AddDuration(run, day, "", testId, durationMs);
                    if (run.Branch.Length > 0)
                    {
                        AddDuration(run, day, run.Branch, testId, durationMs);
                    }
                }

                if (status.IsFailure() && messageId is { } message && GroupOf(message) is { } group)
                {
                    ref var occurrences = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(
                        _failures, (run.ProjectKey, day, group, testId), out var exists);
                    occurrences.Count++;
                    occurrences.FirstMs = exists ? Math.Min(occurrences.FirstMs, run.TimestampMs) : run.TimestampMs;
                    occurrences.LastMs = Math.Max(occurrences.LastMs, run.TimestampMs);
                }
            }

            return rowCount;
        }

        /// <summary>Merges the chunk into the stored rows: each key read once and written once.</summary>
        public void Save()
        {
            using var readDay = Command(_connection, _transaction, """
                SELECT executions, failures, skipped, infra, retry_passes, flaky_commits, last_ms, last_failed_ms, last_flaky_ms,
                       duration_sum, duration_max, histogram, last_ran_ms, runs
                FROM test_days WHERE project_id = $p AND branch = $b AND day = $d AND test_id = $t;
                """);
            using var writeDay = Command(_connection, _transaction, """
                INSERT OR REPLACE INTO test_days (project_id, branch, day, test_id, executions, failures, skipped, infra, retry_passes,
                    flaky_commits, last_ms, last_ran_ms, last_failed_ms, last_flaky_ms, duration_sum, duration_max, histogram, runs)
                VALUES ($p, $b, $d, $t, $executions, $failures, $skipped, $infra, $retry, $flaky, $last, $lastRan, $lastFailed, $lastFlaky,
                    $sum, $max, $histogram, $runs);
                """);
            foreach (var ((project, branch, day, test), row) in _days)
            {
                SetKey(readDay, project, branch, day, test);
                using (var reader = readDay.ExecuteReader())
                {
                    if (reader.Read())
                    {
                        row.Executions += reader.GetInt64(0);
                        row.Failures += reader.GetInt64(1);
                        row.Skipped += reader.GetInt64(2);
                        row.Infra += reader.GetInt64(3);
                        row.RetryPasses += reader.GetInt64(4);
                        row.FlakyCommits += reader.GetInt64(5);
                        row.LastMs = Math.Max(row.LastMs, reader.GetInt64(6));
                        row.LastFailedMs = Max(row.LastFailedMs, reader.IsDBNull(7) ? null : reader.GetInt64(7));
                        row.LastFlakyMs = Max(row.LastFlakyMs, reader.IsDBNull(8) ? null : reader.GetInt64(8));
                        row.DurationSum += reader.GetInt64(9);
                        row.DurationMax = Math.Max(row.DurationMax, reader.GetInt64(10));
                        row.Histogram.Merge((byte[])reader.GetValue(11));
                        row.LastRanMs = Max(row.LastRanMs, reader.IsDBNull(12) ? null : reader.GetInt64(12));
                        if (!reader.IsDBNull(13))
                        {
                            // Runs are folded in key order, so the stored keys all come before this chunk's.
                            var stored = RunKeys.Decode((byte[])reader.GetValue(13));
                            stored.AddRange(row.Runs);
                            row.Runs.Clear();
                            row.Runs.AddRange(stored);
                        }
                    }
                }

                SetKey(writeDay, project, branch, day, test);
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
                writeDay.Parameters.Clear();
            }

            using var readFailure = Command(_connection, _transaction,
                "SELECT occurrences, first_ms, last_ms FROM failure_days WHERE project_id = $p AND day = $d AND group_id = $g AND test_id = $t;");
            using var writeFailure = Command(_connection, _transaction, """
                INSERT OR REPLACE INTO failure_days (project_id, day, group_id, test_id, occurrences, first_ms, last_ms)
                VALUES ($p, $d, $g, $t, $n, $first, $last);
                """);
            foreach (var ((project, day, group, test), occurrences) in _failures)
            {
                var (count, first, last) = (occurrences.Count, occurrences.FirstMs, occurrences.LastMs);
                SetFailureKey(readFailure, project, day, group, test);
                using (var reader = readFailure.ExecuteReader())
                {
                    if (reader.Read())
                    {
                        count += reader.GetInt64(0);
                        first = Math.Min(first, reader.GetInt64(1));
                        last = Math.Max(last, reader.GetInt64(2));
                    }
                }

                SetFailureKey(writeFailure, project, day, group, test);
                writeFailure.Parameters.AddWithValue("$n", count);
                writeFailure.Parameters.AddWithValue("$first", first);
                writeFailure.Parameters.AddWithValue("$last", last);
                writeFailure.ExecuteNonQuery();
                writeFailure.Parameters.Clear();
            }

            using var writeCommit = Command(_connection, _transaction,
                "INSERT OR REPLACE INTO commit_failures (project_id, commit_sha, test_id, flaky, last_ms) VALUES ($p, $c, $t, $f, $l);");
            foreach (var ((project, commitSha), tests) in _commits)
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

        public void Dispose()
        {
            _readRun.Dispose();
            _earlierRuns.Dispose();
            _passedIn.Dispose();
            _commitFailures.Dispose();
            _groupOf.Dispose();
        }

        private static void SetKey(SqliteCommand command, long project, string branch, long day, long test)
        {
            command.Parameters.Clear();
            command.Parameters.AddWithValue("$p", project);
            command.Parameters.AddWithValue("$b", branch);
            command.Parameters.AddWithValue("$d", day);
            command.Parameters.AddWithValue("$t", test);
        }

        private static void SetFailureKey(SqliteCommand command, long project, long day, long group, long test)
        {
            command.Parameters.Clear();
            command.Parameters.AddWithValue("$p", project);
            command.Parameters.AddWithValue("$d", day);
            command.Parameters.AddWithValue("$g", group);
            command.Parameters.AddWithValue("$t", test);
        }

        private static long? Max(long? a, long? b) => a is null ? b : b is null ? a : Math.Max(a.Value, b.Value);

        private int ReadRun(long runKey, List<(long, int, TestCaseStatus, long, long?)> rows)
        {
            rows.Clear();
            _readRun.Parameters["$run"].Value = runKey;
            using var reader = _readRun.ExecuteReader();
            while (reader.Read())
            {
                rows.Add((reader.GetInt64(0), reader.GetInt32(1), (TestCaseStatus)reader.GetInt32(2), reader.GetInt64(3),
                    reader.IsDBNull(4) ? null : reader.GetInt64(4)));
            }

            return rows.Count;
        }

        /// <summary>Each test's outcome (rows are in test, attempt order); returns how many ran and how many failed.</summary>
        private static (long Ran, long Failed) Outcomes(List<(long TestId, int Attempt, TestCaseStatus Status, long, long?)> rows, List<Outcome> outcomes)
        {
            outcomes.Clear();
            long ran = 0, failed = 0;
            var i = 0;
            while (i < rows.Count)
            {
                var outcome = new Outcome { TestId = rows[i].TestId };
                for (; i < rows.Count && rows[i].TestId == outcome.TestId; i++)
                {
                    if (i + 1 < rows.Count && rows[i + 1].TestId == outcome.TestId)
                    {
                        outcome.FailedBefore |= rows[i].Status.IsFailure();
                    }
                    else
                    {
                        outcome.Final = rows[i].Status;
                    }
                }

                if (outcome.Final != TestCaseStatus.Skipped)
                {
                    ran++;
                    failed += outcome.Final.IsFailure() ? 1 : 0;
                }

                outcomes.Add(outcome);
            }

            return (ran, failed);
        }

        /// <summary>The tests that failed on the commit so far (loaded once per chunk, then kept current in memory).</summary>
        private Dictionary<long, CommitFailure> CommitFailures(long projectKey, string commitSha)
        {
            if (_commits.TryGetValue((projectKey, commitSha), out var known))
            {
                return known;
            }

            known = [];
            _commitFailures.Parameters["$project"].Value = projectKey;
            _commitFailures.Parameters["$commit"].Value = commitSha;
            using (var reader = _commitFailures.ExecuteReader())
            {
                while (reader.Read())
                {
                    known[reader.GetInt64(0)] = new CommitFailure(reader.GetInt64(1) != 0, reader.GetInt64(2), Changed: false);
                }
            }

            _commits[(projectKey, commitSha)] = known;
            return known;
        }

        /// <summary>
        /// Whether this run makes the commit flaky for the test: a pass after a failure on the commit, or a first
        /// failure on it after an earlier run of it passed the test. A commit already flaky for the test counts once.
        /// </summary>
        private bool IsNewFlakyCommit(RunToFold run, Outcome outcome, Dictionary<long, CommitFailure> commit, ref List<long>? earlier)
        {
            var failedNow = outcome.Final.IsFailure();
            if (commit.TryGetValue(outcome.TestId, out var known))
            {
                var flake = !known.Flaky && !failedNow; // it failed on this commit before and passes now
                commit[outcome.TestId] = new CommitFailure(known.Flaky || flake, Math.Max(known.LastMs, run.TimestampMs), Changed: true);
                return flake;
            }

            if (!failedNow)
            {
                return false; // passes, and never failed on this commit: nothing to remember
            }

            // Its first failure on the commit: flaky when any earlier run of the commit passed it.
            earlier ??= EarlierRuns(run);
            var passedBefore = false;
            foreach (var runKey in earlier)
            {
                _passedIn.Parameters["$run"].Value = runKey;
                _passedIn.Parameters["$test"].Value = outcome.TestId;
                if (_passedIn.ExecuteScalar() is long status && status == (long)TestCaseStatus.Passed)
                {
                    passedBefore = true;
                    break;
                }
            }

            commit[outcome.TestId] = new CommitFailure(passedBefore, run.TimestampMs, Changed: true);
            return passedBefore;
        }

        /// <summary>The commit's earlier runs that were not infrastructure failures, newest first (at most <see cref="TestStateRules.MaxCommitRuns"/>).</summary>
        private List<long> EarlierRuns(RunToFold run)
        {
            var keys = new List<long>();
            _earlierRuns.Parameters["$project"].Value = run.ProjectKey;
            _earlierRuns.Parameters["$commit"].Value = run.CommitSha;
            _earlierRuns.Parameters["$run"].Value = run.Key;
            using var reader = _earlierRuns.ExecuteReader();
            while (reader.Read())
            {
                if (reader.IsDBNull(1))
                {
                    continue; // a run without test cases
                }

                var ran = reader.GetInt64(1) - reader.GetInt64(3);
                if (!_rules.IsInfrastructureFailure(ran, reader.GetInt64(2)))
                {
                    keys.Add(reader.GetInt64(0));
                }
            }

            return keys;
        }

        private void Record(RunToFold run, long day, string branch, Outcome outcome, bool infra, bool flakyCommit)
        {
            var row = Get(run.ProjectKey, branch, day, outcome.TestId);
            row.LastMs = Math.Max(row.LastMs, run.TimestampMs);
            if (branch.Length == 0)
            {
                row.Runs.Add(run.Key); // its history reads these, not every run of the day
            }

            if (outcome.Final == TestCaseStatus.Skipped)
            {
                row.Skipped++;
                return;
            }

            if (infra)
            {
                row.Infra++;
                return;
            }

            row.Executions++;
            row.LastRanMs = Max(row.LastRanMs, run.TimestampMs);
            if (outcome.Final.IsFailure())
            {
                row.Failures++;
                row.LastFailedMs = Max(row.LastFailedMs, run.TimestampMs);
            }
            else if (outcome.FailedBefore)
            {
                row.RetryPasses++;
                row.LastFlakyMs = Max(row.LastFlakyMs, run.TimestampMs);
            }

            if (flakyCommit)
            {
                row.FlakyCommits++;
                row.LastFlakyMs = Max(row.LastFlakyMs, run.TimestampMs);
            }
        }

        private void AddDuration(RunToFold run, long day, string branch, long testId, long durationMs)
        {
            var row = Get(run.ProjectKey, branch, day, testId);
            row.DurationSum += durationMs;
            row.DurationMax = Math.Max(row.DurationMax, durationMs);
            row.Histogram.Add(durationMs);
        }

        private Day Get(long project, string branch, long day, long test)
        {
            var key = (project, branch, day, test);
            if (!_days.TryGetValue(key, out var row))
            {
                _days[key] = row = new Day();
            }

            return row;
        }

        /// <summary>The message's failure group; null if the message is gone (nothing to count it under).</summary>
        private long? GroupOf(long messageId)
        {
            if (!_groups.TryGetValue(messageId, out var group))
            {
                _groupOf.Parameters["$id"].Value = messageId;
                if (_groupOf.ExecuteScalar() is not long found)
                {
                    return null;
                }

                _groups[messageId] = group = found;
            }

            return group;
        }
    }

    private sealed class Day
    {
        public long Executions, Failures, Skipped, Infra, RetryPasses, FlakyCommits, LastMs, DurationSum, DurationMax;
        public long? LastRanMs, LastFailedMs, LastFlakyMs;
        public SparseHistogram Histogram { get; } = new();

        /// <summary>Keys of the runs it appeared in that day, ascending (all-branches rows only).</summary>
        public List<long> Runs { get; } = [];
    }

    /// <summary>A test that failed on a commit: whether the commit already made it flaky, when it last failed there.</summary>
    private readonly record struct CommitFailure(bool Flaky, long LastMs, bool Changed);

    private struct Occurrences
    {
        public long Count, FirstMs, LastMs;
    }
}
