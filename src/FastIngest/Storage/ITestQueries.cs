namespace FastIngest.Storage;

/// <summary>
/// The read side of per-test data. Window reads return roll-up rows (one per test and day), never executions;
/// classification happens above storage (<see cref="TestAnalytics.TestWindow"/>). Reads use their own connections.
/// </summary>
public interface ITestQueries
{
    /// <summary>Folds runs committed since the last fold into the roll-ups, so a read right after an upload sees it.</summary>
    Task FoldPendingAsync();

    /// <summary>
    /// A run's executions after <paramref name="after"/> (see <see cref="RunExecution.Position"/>): shard by shard
    /// in upload order, each in (test, attempt) order; optionally of one status; null when the project has no such run.
    /// </summary>
    ValueTask<IReadOnlyList<RunExecution>?> ListRunExecutionsAsync(long projectKey, string runId, TestCaseStatus? status, ExecutionPosition after, int limit);

    /// <summary>
    /// Each test's roll-ups for <paramref name="branch"/> ('' = all branches) from <paramref name="sinceDay"/> on,
    /// summed per test (by SQLite: tens of thousands of day rows become one row per test).
    /// </summary>
    ValueTask<IReadOnlyList<TestTotals>> WindowTotalsAsync(long projectKey, string branch, long sinceDay);

    /// <summary>
    /// Duration percentiles over the window for the given tests, or for every test of the project when
    /// <paramref name="testIds"/> is null.
    /// </summary>
    ValueTask<IReadOnlyDictionary<long, Durations>> WindowDurationsAsync(long projectKey, string branch, long sinceDay, IReadOnlyCollection<long>? testIds);

    /// <summary>The named tests of the project (ids of other projects are left out).</summary>
    ValueTask<IReadOnlyDictionary<long, TestInfo>> TestsAsync(long projectKey, IReadOnlyCollection<long> testIds);

    /// <summary>One test's roll-up rows for <paramref name="branch"/> from <paramref name="sinceDay"/> on.</summary>
    ValueTask<IReadOnlyList<TestDayRow>> TestDaysAsync(long testId, string branch, long sinceDay);

    /// <summary>
    /// One test's executions, newest day first and within a day the most recently stored run first, in runs before
    /// <paramref name="before"/> (null: from the newest). <see cref="TestExecutionPage.NextPage"/> is where the next page starts,
    /// null at the end. Reads only the test's own runs (listed in its day roll-ups), whatever else the project ran.
    /// </summary>
    ValueTask<TestExecutionPage> TestExecutionsAsync(long projectKey, long testId, RunPosition? before, int limit);

    /// <summary>
    /// Failure-group occurrences per (group, test) over the project's days from <paramref name="sinceDay"/> on; of
    /// one test only when <paramref name="testId"/> is given.
    /// </summary>
    ValueTask<IReadOnlyList<FailureOccurrence>> FailureOccurrencesAsync(long projectKey, long sinceDay, long? testId = null);

    /// <summary>The groups' patterns and one example message each.</summary>
    ValueTask<IReadOnlyDictionary<long, FailureGroupInfo>> FailureGroupsAsync(long projectKey, IReadOnlyCollection<long> groupIds);

    /// <summary>Records a reset of the test's flaky state; false when the project has no such test.</summary>
    Task<bool> ResetFlakyAsync(long projectKey, long testId, long nowMs, string resetBy);
}

/// <summary>A test: (project, suite, name), a compact id, and the file its reports last named.</summary>
public sealed record TestInfo(long Id, string Suite, string Name, string? File, long FirstSeenMs, long? FlakyResetMs, string? FlakyResetBy);

/// <summary>
/// A test's roll-ups summed over a window. <see cref="LastMs"/> is when it last appeared (skipped too),
/// <see cref="LastRanMs"/> when it last ran outside an infrastructure failure. <see cref="Flakes"/> and <see cref="LastFlakyMs"/> count only days whose
/// last flake came after the test's last reset; <see cref="LastFlakyAnyMs"/> ignores resets.
/// </summary>
public sealed record TestTotals(
    long TestId,
    long Executions,
    long Failures,
    long Skipped,
    long Infra,
    long RetryPasses,
    long FlakyCommits,
    long Flakes,
    long LastMs,
    long? LastRanMs,
    long? LastFailedMs,
    long? LastFlakyMs,
    long? LastFlakyAnyMs,
    long DurationSum,
    long DurationMax,
    long FirstSeenMs,
    long? FlakyResetMs);

/// <summary>
/// Nearest-rank duration percentiles (to within the histogram's 5% buckets) over <see cref="Samples"/> attempts,
/// with their largest and their sum.
/// </summary>
public readonly record struct Durations(long P50Ms, long P95Ms, long Samples, long MaxMs, long SumMs);

/// <summary>One test's roll-up for one day (and branch): counts, last times, durations.</summary>
public sealed record TestDayRow(
    long TestId,
    long Day,
    long Executions,
    long Failures,
    long Skipped,
    long Infra,
    long RetryPasses,
    long FlakyCommits,
    long LastMs,
    long? LastRanMs,
    long? LastFailedMs,
    long? LastFlakyMs,
    long DurationSum,
    long DurationMax,
    byte[] Histogram);

/// <summary>
/// An execution in a run's listing: <see cref="Shard"/> names the upload it came with (null for a run uploaded in one
/// piece); <see cref="Position"/> orders and pages them.
/// </summary>
public sealed record RunExecution(long TestId, TestCase Case, long RowKey, string? Shard)
{
    public ExecutionPosition Position => new(RowKey, (TestId << 7) | (long)Case.Attempt);
}

/// <summary>
/// A place in a run's listing: the stored row (the run, or one of its shards, in key order), then test and attempt
/// packed into one number. <see cref="RowKey"/> 0 names the run's first row (cursors issued before shards existed).
/// </summary>
public readonly record struct ExecutionPosition(long RowKey, long TestAttempt)
{
    public static ExecutionPosition Start => new(0, -1);

    /// <summary>The dashboard's <c>after</c> parameter: <c>row.test-attempt</c>.</summary>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{RowKey}.{TestAttempt}");

    public static ExecutionPosition Parse(string? text)
    {
        var dot = text?.IndexOf('.') ?? -1;
        if (dot < 0 && long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var legacy))
        {
            return new ExecutionPosition(0, legacy); // a link from before shards: test and attempt in the run's only row
        }

        return dot > 0
            && long.TryParse(text.AsSpan(0, dot), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var row)
            && long.TryParse(text.AsSpan(dot + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var testAttempt)
            ? new ExecutionPosition(row, testAttempt)
            : Start;
    }
}

/// <summary>A place in a test's history: a UTC day and a run key within it.</summary>
public readonly record struct RunPosition(long Day, long RunKey);

public sealed record TestExecution(
    string RunId,
    long RunTimestampMs,
    string? Branch,
    string? CommitSha,
    TestCaseStatus Status,
    long DurationMs,
    int Attempt,
    string? FailureMessage);

/// <summary>A page of a test's executions and where the next one starts (null at the end).</summary>
public sealed record TestExecutionPage(IReadOnlyList<TestExecution> Executions, RunPosition? NextPage);

public readonly record struct FailureOccurrence(long GroupId, long TestId, long Occurrences, long FirstMs, long LastMs);

public sealed record FailureGroupInfo(long Id, string Pattern, string Example);
