using FastIngest.Storage;

namespace FastIngest.TestAnalytics;

/// <summary>What a test can be in a window (<see cref="TestStateRules"/> says when); a test may be new and flaky at once.</summary>
[Flags]
public enum TestStates
{
    None = 0,
    Flaky = 1,
    Broken = 2,
    New = 4,
    Fixed = 8,
}

/// <summary>
/// Sums a window's roll-up rows per test and classifies each test. Pure: storage hands it rows, it hands back
/// summaries, so every rule is tested on crafted rows without a database.
/// </summary>
public static class TestWindow
{
    public static List<TestSummary> Summarize(IReadOnlyList<TestDayRow> rows, IReadOnlyDictionary<long, TestMarks> marks, long sinceMs, long nowMs,
        TestStateRules rules)
    {
        var byTest = new Dictionary<long, TestSummary>();
        foreach (var row in rows)
        {
            if (!byTest.TryGetValue(row.TestId, out var summary))
            {
                var mark = marks.GetValueOrDefault(row.TestId);
                byTest[row.TestId] = summary = new TestSummary(row.TestId, mark.FirstSeenMs, mark.FlakyResetMs);
            }

            summary.Add(row);
        }

        var recentFlakeSince = nowMs - (rules.FixedAfterDays * 24L * 60 * 60 * 1000);
        var tests = new List<TestSummary>(byTest.Count);
        foreach (var summary in byTest.Values)
        {
            summary.Classify(sinceMs, recentFlakeSince, rules);
            tests.Add(summary);
        }

        return tests;
    }

    /// <summary>The tests in <paramref name="state"/> (all when None), in the order that state is read in.</summary>
    public static List<TestSummary> Select(List<TestSummary> tests, TestStates state)
    {
        var selected = state == TestStates.None ? tests : tests.FindAll(t => (t.States & state) != 0);
        Comparison<TestSummary> order = state switch
        {
            TestStates.Flaky => static (a, b) => Compare(b.Flakes, a.Flakes, b.LastFlakyMs ?? 0, a.LastFlakyMs ?? 0, a.TestId, b.TestId),
            TestStates.Broken => static (a, b) => Compare(b.Executions, a.Executions, b.LastMs, a.LastMs, a.TestId, b.TestId),
            TestStates.New => static (a, b) => Compare(b.FirstSeenMs, a.FirstSeenMs, 0, 0, a.TestId, b.TestId),
            TestStates.Fixed => static (a, b) => Compare(b.LastFlakyAnyMs ?? 0, a.LastFlakyAnyMs ?? 0, 0, 0, a.TestId, b.TestId),
            _ => static (a, b) => Compare(b.Failures, a.Failures, b.Executions, a.Executions, a.TestId, b.TestId),
        };
        selected.Sort(order);
        return selected;
    }

    /// <summary>Tests that ran in the window by nearest-rank p95 duration, slowest first.</summary>
    public static List<TestSummary> Slowest(List<TestSummary> tests)
    {
        var ran = tests.FindAll(static t => t.Histogram.Total > 0);
        ran.Sort(static (a, b) => Compare(b.P95Ms, a.P95Ms, b.DurationMax, a.DurationMax, a.TestId, b.TestId));
        return ran;
    }

    private static int Compare(long a1, long b1, long a2, long b2, long a3, long b3) =>
        a1 != b1 ? a1.CompareTo(b1) : a2 != b2 ? a2.CompareTo(b2) : a3.CompareTo(b3);
}

/// <summary>One test over a window: its counts summed over days, its states, its duration percentiles.</summary>
public sealed class TestSummary(long testId, long firstSeenMs, long? flakyResetMs)
{
    private readonly List<byte[]> _histograms = [];
    private SparseHistogram? _histogram;

    public long TestId { get; } = testId;

    public long FirstSeenMs { get; } = firstSeenMs;

    public long? FlakyResetMs { get; } = flakyResetMs;

    /// <summary>Runs (infrastructure failures left out) in which its last attempt passed or failed.</summary>
    public long Executions { get; private set; }

    public long Failures { get; private set; }

    public long Skipped { get; private set; }

    /// <summary>Executions in infrastructure-failure runs, left out of every other count.</summary>
    public long InfraExecutions { get; private set; }

    public long RetryPasses { get; private set; }

    public long FlakyCommits { get; private set; }

    /// <summary>Flakes (retry passes plus flaky commits) since the last reset.</summary>
    public long Flakes { get; private set; }

    public long LastMs { get; private set; }

    public long? LastFailedMs { get; private set; }

    /// <summary>The last flake since the reset.</summary>
    public long? LastFlakyMs { get; private set; }

    /// <summary>The last flake in the window, reset or not.</summary>
    public long? LastFlakyAnyMs { get; private set; }

    public long DurationSum { get; private set; }

    public long DurationMax { get; private set; }

    public TestStates States { get; private set; }

    public double FailureRate => Executions == 0 ? 0 : (double)Failures / Executions;

    public SparseHistogram Histogram
    {
        get
        {
            if (_histogram is null)
            {
                _histogram = new SparseHistogram();
                foreach (var blob in _histograms)
                {
                    _histogram.Merge(blob);
                }
            }

            return _histogram;
        }
    }

    public long P50Ms => Histogram.Percentile(50, DurationMax);

    public long P95Ms => Histogram.Percentile(95, DurationMax);

    internal void Add(TestDayRow row)
    {
        Executions += row.Executions;
        Failures += row.Failures;
        Skipped += row.Skipped;
        InfraExecutions += row.Infra;
        RetryPasses += row.RetryPasses;
        FlakyCommits += row.FlakyCommits;
        LastMs = Math.Max(LastMs, row.LastMs);
        LastFailedMs = Max(LastFailedMs, row.LastFailedMs);
        LastFlakyAnyMs = Max(LastFlakyAnyMs, row.LastFlakyMs);

        // A day counts after a reset when its last flake came after the reset (roll-ups are by day).
        if (row.LastFlakyMs is { } flakyMs && (FlakyResetMs is not { } reset || flakyMs > reset))
        {
            Flakes += row.RetryPasses + row.FlakyCommits;
            LastFlakyMs = Max(LastFlakyMs, flakyMs);
        }

        DurationSum += row.DurationSum;
        DurationMax = Math.Max(DurationMax, row.DurationMax);
        if (row.Histogram.Length > 0)
        {
            _histograms.Add(row.Histogram);
        }
    }

    internal void Classify(long sinceMs, long recentFlakeSince, TestStateRules rules)
    {
        var states = TestStates.None;
        var flaky = Flakes > 0;
        if (flaky)
        {
            states |= TestStates.Flaky;
        }

        // Fixed: it flaked in the window, but not lately (or only before a reset), and it has run since.
        var quiet = !flaky || LastFlakyMs < recentFlakeSince;
        if (LastFlakyAnyMs is { } lastFlake && quiet && LastMs > lastFlake)
        {
            states |= TestStates.Fixed;
        }

        if (!flaky && Executions >= rules.BrokenMinExecutions && Failures == Executions)
        {
            states |= TestStates.Broken;
        }

        if (FirstSeenMs >= sinceMs)
        {
            states |= TestStates.New;
        }

        States = states;
    }

    private static long? Max(long? a, long? b) => a is null ? b : b is null ? a : Math.Max(a.Value, b.Value);
}
