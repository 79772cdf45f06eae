using FastIngest.TestAnalytics;

namespace FastIngest.Storage;

/// <summary>
/// What a per-test fold needs to look up in the stored rows while it folds runs. One implementation per backend;
/// the rules of folding (<see cref="TestRollupChunk"/>) are written once.
/// </summary>
internal interface ITestFoldSource
{
    /// <summary>The run row's executions, in (test, attempt) order.</summary>
    void ReadExecutions(long runKey, List<FoldedExecution> into);

    /// <summary>The tests that failed so far on the commit (from <c>commit_failures</c>).</summary>
    void ReadCommitFailures(long projectKey, string commitSha, Dictionary<long, CommitFailure> into);

    /// <summary>
    /// The commit's run rows with executions that count as earlier than <paramref name="beforeRunKey"/> (a lower key;
    /// on a backend where nodes commit out of key order, also any run already folded), newest first, at most <paramref name="limit"/>.
    /// </summary>
    void ReadEarlierRuns(long projectKey, string commitSha, long beforeRunKey, int limit, List<EarlierRun> into);

    /// <summary>Whether the test's last attempt passed in any of these runs.</summary>
    bool PassedInAny(List<long> runKeys, long testId);

    /// <summary>The failure message's group; null if the message is gone.</summary>
    long? GroupOf(long messageId);
}

/// <summary>A run row to fold: its key, project, time, branch ('' for none) and commit.</summary>
internal sealed record RunToFold(long Key, long ProjectKey, long TimestampMs, string Branch, string? CommitSha);

internal readonly record struct FoldedExecution(long TestId, int Attempt, TestCaseStatus Status, long DurationMs, long? MessageId);

/// <summary>An earlier run of a commit; <see cref="Total"/> is null for a run without test cases.</summary>
internal readonly record struct EarlierRun(long Key, long? Total, long Failed, long Skipped);

/// <summary>A test that failed on a commit: whether the commit already made it flaky, when it last failed there.</summary>
internal readonly record struct CommitFailure(bool Flaky, long LastMs, bool Changed);

/// <summary>The key of a per-test daily roll-up: project, branch ('' = all), UTC day, test.</summary>
internal readonly record struct TestDayKey(long Project, string Branch, long Day, long Test);

/// <summary>The key of a failure group's daily occurrences for one test.</summary>
internal readonly record struct FailureDayKey(long Project, long Day, long Group, long Test);

/// <summary>
/// One chunk of the per-test fold: runs are added one by one (each read once, in key order), their roll-ups are
/// accumulated in memory, and the backend merges them into its tables once per chunk. Flake detection happens
/// here: a retry inside the run that turned a failure into a pass, or an outcome that differs from an earlier run
/// of the same commit (a pass is a flake when its test failed on the commit before, a first failure is one when
/// any earlier run of the commit passed it).
/// </summary>
internal sealed class TestRollupChunk
{
    private readonly ITestFoldSource _source;
    private readonly TestStateRules _rules;
    private readonly Dictionary<long, long> _groups = [];
    private readonly List<FoldedExecution> _rows = [];
    private readonly List<Outcome> _outcomes = [];
    private readonly List<EarlierRun> _earlier = [];

    public TestRollupChunk(ITestFoldSource source, TestStateRules rules)
    {
        _source = source;
        _rules = rules;
    }

    public Dictionary<TestDayKey, TestDayRollup> Days { get; } = [];

    public Dictionary<FailureDayKey, FailureDayRollup> Failures { get; } = [];

    /// <summary>Per (project, commit): the tests that failed on it, as this chunk leaves them (<see cref="CommitFailure.Changed"/> marks what to write).</summary>
    public Dictionary<(long Project, string Commit), Dictionary<long, CommitFailure>> Commits { get; } = [];

    /// <summary>Folds one run; returns how many executions it read.</summary>
    public long Add(RunToFold run)
    {
        _rows.Clear();
        _source.ReadExecutions(run.Key, _rows);
        if (_rows.Count == 0)
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
                    Failures, new FailureDayKey(run.ProjectKey, day, group, testId), out var exists);
                occurrences.Count++;
                occurrences.FirstMs = exists ? Math.Min(occurrences.FirstMs, run.TimestampMs) : run.TimestampMs;
                occurrences.LastMs = Math.Max(occurrences.LastMs, run.TimestampMs);
            }
        }

        return _rows.Count;
    }

    /// <summary>A test's outcome in one run: its last attempt decides; an earlier failed attempt makes a pass a retry pass.</summary>
    private struct Outcome
    {
        public long TestId;
        public TestCaseStatus Final;
        public bool FailedBefore;
    }

    /// <summary>Each test's outcome (rows are in test, attempt order); returns how many ran and how many failed.</summary>
    private static (long Ran, long Failed) Outcomes(List<FoldedExecution> rows, List<Outcome> outcomes)
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
        if (!Commits.TryGetValue((projectKey, commitSha), out var known))
        {
            known = [];
            _source.ReadCommitFailures(projectKey, commitSha, known);
            Commits[(projectKey, commitSha)] = known;
        }

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
        var passedBefore = earlier.Count > 0 && _source.PassedInAny(earlier, outcome.TestId);

        commit[outcome.TestId] = new CommitFailure(passedBefore, run.TimestampMs, Changed: true);
        return passedBefore;
    }

    /// <summary>The commit's earlier runs that were not infrastructure failures, newest first (at most <see cref="TestStateRules.MaxCommitRuns"/>).</summary>
    private List<long> EarlierRuns(RunToFold run)
    {
        _earlier.Clear();
        _source.ReadEarlierRuns(run.ProjectKey, run.CommitSha!, run.Key, TestStateRules.MaxCommitRuns, _earlier);
        var keys = new List<long>(_earlier.Count);
        foreach (var earlier in _earlier)
        {
            if (earlier.Total is { } total && !_rules.IsInfrastructureFailure(total - earlier.Skipped, earlier.Failed))
            {
                keys.Add(earlier.Key);
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
        row.LastRanMs = TestDayRollup.Max(row.LastRanMs, run.TimestampMs);
        if (outcome.Final.IsFailure())
        {
            row.Failures++;
            row.LastFailedMs = TestDayRollup.Max(row.LastFailedMs, run.TimestampMs);
        }
        else if (outcome.FailedBefore)
        {
            row.RetryPasses++;
            row.LastFlakyMs = TestDayRollup.Max(row.LastFlakyMs, run.TimestampMs);
        }

        if (flakyCommit)
        {
            row.FlakyCommits++;
            row.LastFlakyMs = TestDayRollup.Max(row.LastFlakyMs, run.TimestampMs);
        }
    }

    private void AddDuration(RunToFold run, long day, string branch, long testId, long durationMs)
    {
        var row = Get(run.ProjectKey, branch, day, testId);
        row.DurationSum += durationMs;
        row.DurationMax = Math.Max(row.DurationMax, durationMs);
        row.Histogram.Add(durationMs);
    }

    private TestDayRollup Get(long project, string branch, long day, long test)
    {
        var key = new TestDayKey(project, branch, day, test);
        if (!Days.TryGetValue(key, out var row))
        {
            Days[key] = row = new TestDayRollup();
        }

        return row;
    }

    /// <summary>The message's failure group; null if the message is gone (nothing to count it under).</summary>
    private long? GroupOf(long messageId)
    {
        if (!_groups.TryGetValue(messageId, out var group))
        {
            if (_source.GroupOf(messageId) is not { } found)
            {
                return null;
            }

            _groups[messageId] = group = found;
        }

        return group;
    }
}

/// <summary>A test's roll-up for one day and branch, as a chunk accumulates it and as it merges with the stored row.</summary>
internal sealed class TestDayRollup
{
    public long Executions, Failures, Skipped, Infra, RetryPasses, FlakyCommits, LastMs, DurationSum, DurationMax;
    public long? LastRanMs, LastFailedMs, LastFlakyMs;

    public SparseHistogram Histogram { get; } = new();

    /// <summary>Keys of the runs it appeared in that day, ascending (all-branches rows only).</summary>
    public List<long> Runs { get; } = [];

    /// <summary>
    /// The <c>test_days</c> columns a fold reads back, in the order <see cref="AddStored(System.Data.Common.DbDataReader, int)"/>
    /// expects them (the same on every backend).
    /// </summary>
    public const string StoredColumns = """
        executions, failures, skipped, infra, retry_passes, flaky_commits, last_ms, last_ran_ms, last_failed_ms, last_flaky_ms,
        duration_sum, duration_max, histogram, runs
        """;

    /// <summary>Adds the stored row a reader is on, its <see cref="StoredColumns"/> starting at <paramref name="first"/>.</summary>
    public void AddStored(System.Data.Common.DbDataReader row, int first)
    {
        long? Nullable(int column) => row.IsDBNull(first + column) ? null : row.GetInt64(first + column);
        var stored = new TestDayRollup
        {
            Executions = row.GetInt64(first),
            Failures = row.GetInt64(first + 1),
            Skipped = row.GetInt64(first + 2),
            Infra = row.GetInt64(first + 3),
            RetryPasses = row.GetInt64(first + 4),
            FlakyCommits = row.GetInt64(first + 5),
            LastMs = row.GetInt64(first + 6),
            LastRanMs = Nullable(7),
            LastFailedMs = Nullable(8),
            LastFlakyMs = Nullable(9),
            DurationSum = row.GetInt64(first + 10),
            DurationMax = row.GetInt64(first + 11),
        };
        AddStored(stored, row.GetFieldValue<byte[]>(first + 12), row.IsDBNull(first + 13) ? [] : row.GetFieldValue<byte[]>(first + 13));
    }

    /// <summary>
    /// Adds the stored row's counts and runs. On SQLite the stored runs are all older (runs are folded in key order);
    /// on PostgreSQL a node may commit a run after a later key was folded, so the merged list is put back in order.
    /// </summary>
    private void AddStored(TestDayRollup stored, ReadOnlySpan<byte> storedHistogram, ReadOnlySpan<byte> storedRuns)
    {
        Executions += stored.Executions;
        Failures += stored.Failures;
        Skipped += stored.Skipped;
        Infra += stored.Infra;
        RetryPasses += stored.RetryPasses;
        FlakyCommits += stored.FlakyCommits;
        LastMs = Math.Max(LastMs, stored.LastMs);
        LastRanMs = Max(LastRanMs, stored.LastRanMs);
        LastFailedMs = Max(LastFailedMs, stored.LastFailedMs);
        LastFlakyMs = Max(LastFlakyMs, stored.LastFlakyMs);
        DurationSum += stored.DurationSum;
        DurationMax = Math.Max(DurationMax, stored.DurationMax);
        Histogram.Merge(storedHistogram);
        if (!storedRuns.IsEmpty)
        {
            var runs = RunKeys.Decode(storedRuns);
            var ascending = runs.Count == 0 || Runs.Count == 0 || runs[^1] < Runs[0];
            runs.AddRange(Runs);
            if (!ascending)
            {
                runs.Sort();
            }

            Runs.Clear();
            Runs.AddRange(runs);
        }
    }

    public static long? Max(long? a, long? b) => a is null ? b : b is null ? a : Math.Max(a.Value, b.Value);
}

/// <summary>How often a failure group hit a test on one day, and when first and last.</summary>
internal struct FailureDayRollup
{
    public long Count, FirstMs, LastMs;
}
