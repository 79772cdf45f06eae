namespace FastIngest.Storage;

/// <summary>The read side of per-test results. Like run reads, these use their own connections.</summary>
public interface ITestCaseQueries
{
    /// <summary>
    /// A run's test cases in upload order after position <paramref name="afterSeq"/>, optionally of one status;
    /// null when the project has no such run.
    /// </summary>
    IReadOnlyList<StoredTestCase>? ListTestCases(long projectKey, string runId, TestCaseStatus? status, long afterSeq, int limit);

    /// <summary>
    /// Tests that both passed and failed (error counts as failed) on the same commit, or within one run when the
    /// run has no commit, among runs with a timestamp at or after <paramref name="sinceMs"/>. Most flips first.
    /// </summary>
    IReadOnlyList<FlakyTest> FlakyTests(long projectKey, long sinceMs, string? branch, int limit);

    /// <summary>Tests by nearest-rank p95 duration over their non-skipped executions since <paramref name="sinceMs"/>.</summary>
    IReadOnlyList<SlowTest> SlowestTests(long projectKey, long sinceMs, string? branch, int limit);
}

public sealed record StoredTestCase(long Seq, TestCase Case);

/// <summary>
/// A flaky test: <see cref="Flips"/> counts changes between passing and failing over its executions ordered by run
/// time and attempt; <see cref="FlakyGroups"/> the commits (or commit-less runs) on which it both passed and failed.
/// </summary>
public sealed record FlakyTest(
    string Suite,
    string Name,
    long Flips,
    long FlakyGroups,
    long Executions,
    long Failures,
    long LastFlakyMs,
    long LastSeenMs) : ITestIdentity;

public sealed record SlowTest(string Suite, string Name, long P95Ms, long MaxMs, double MeanMs, long Executions) : ITestIdentity;

/// <summary>What names a test across runs: its suite and its name.</summary>
public interface ITestIdentity
{
    string Suite { get; }

    string Name { get; }
}
