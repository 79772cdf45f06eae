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
/// Classifies a window's tests from their summed roll-ups. Pure: storage hands it totals, it hands back
/// summaries, so every rule is tested without a database.
/// </summary>
public static class TestWindow
{
    public static List<TestSummary> Summarize(IReadOnlyList<TestTotals> totals, long sinceMs, long nowMs, TestStateRules rules)
    {
        var recentFlakeSince = nowMs - (rules.FixedAfterDays * 24L * 60 * 60 * 1000);
        var tests = new List<TestSummary>(totals.Count);
        foreach (var total in totals)
        {
            tests.Add(new TestSummary(total, Classify(total, sinceMs, recentFlakeSince, rules)));
        }

        return tests;
    }

    /// <summary>Sums one test's day rows (a single test's read, a handful of rows) into the same totals storage sums.</summary>
    public static TestTotals Sum(long testId, long firstSeenMs, long? flakyResetMs, IReadOnlyList<TestDayRow> days)
    {
        long executions = 0, failures = 0, skipped = 0, infra = 0, retryPasses = 0, flakyCommits = 0, flakes = 0, lastMs = 0, sum = 0, max = 0;
        long? lastRan = null, lastFailed = null, lastFlaky = null, lastFlakyAny = null;
        foreach (var day in days)
        {
            executions += day.Executions;
            failures += day.Failures;
            skipped += day.Skipped;
            infra += day.Infra;
            retryPasses += day.RetryPasses;
            flakyCommits += day.FlakyCommits;
            lastMs = Math.Max(lastMs, day.LastMs);
            lastRan = Max(lastRan, day.LastRanMs);
            lastFailed = Max(lastFailed, day.LastFailedMs);
            lastFlakyAny = Max(lastFlakyAny, day.LastFlakyMs);

            // A day counts after a reset when its last flake came after the reset (roll-ups are by day).
            if (day.LastFlakyMs is { } flakyMs && (flakyResetMs is not { } reset || flakyMs > reset))
            {
                flakes += day.RetryPasses + day.FlakyCommits;
                lastFlaky = Max(lastFlaky, flakyMs);
            }

            sum += day.DurationSum;
            max = Math.Max(max, day.DurationMax);
        }

        return new TestTotals(testId, executions, failures, skipped, infra, retryPasses, flakyCommits, flakes, lastMs, lastRan, lastFailed, lastFlaky,
            lastFlakyAny, sum, max, firstSeenMs, flakyResetMs);
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

    private static TestStates Classify(TestTotals t, long sinceMs, long recentFlakeSince, TestStateRules rules)
    {
        var states = TestStates.None;
        var flaky = t.Flakes > 0;
        if (flaky)
        {
            states |= TestStates.Flaky;
        }

        // Fixed: it flaked in the window, but not lately (or only before a reset), and it has run since (a skipped
        // or quarantined test has not: it is not fixed by not running).
        var quiet = !flaky || t.LastFlakyMs < recentFlakeSince;
        if (t.LastFlakyAnyMs is { } lastFlake && quiet && t.LastRanMs > lastFlake)
        {
            states |= TestStates.Fixed;
        }

        if (!flaky && t.Executions >= rules.BrokenMinExecutions && t.Failures == t.Executions)
        {
            states |= TestStates.Broken;
        }

        if (t.FirstSeenMs >= sinceMs)
        {
            states |= TestStates.New;
        }

        return states;
    }

    private static int Compare(long a1, long b1, long a2, long b2, long a3, long b3) =>
        a1 != b1 ? a1.CompareTo(b1) : a2 != b2 ? a2.CompareTo(b2) : a3.CompareTo(b3);

    private static long? Max(long? a, long? b) => a is null ? b : b is null ? a : Math.Max(a.Value, b.Value);
}

/// <summary>One test over a window: its totals and its states.</summary>
public sealed class TestSummary(TestTotals totals, TestStates states)
{
    public TestTotals Totals { get; } = totals;

    public TestStates States { get; } = states;

    public long TestId => Totals.TestId;

    public long Executions => Totals.Executions;

    public long Failures => Totals.Failures;

    public long Flakes => Totals.Flakes;

    public long? LastFlakyMs => Totals.LastFlakyMs;

    public long? LastFlakyAnyMs => Totals.LastFlakyAnyMs;

    public long LastMs => Totals.LastMs;

    public long FirstSeenMs => Totals.FirstSeenMs;

    public double FailureRate => Totals.Executions == 0 ? 0 : (double)Totals.Failures / Totals.Executions;
}
