using FastIngest.Storage;

namespace FastIngest.TestCases;

/// <summary>
/// A run's validated test cases with what follows from them: counts over each test's last attempt (so a retried
/// test counts once), whether any test finally failed, and a fingerprint of the whole list for idempotency.
/// </summary>
public sealed record TestCaseSet(IReadOnlyList<TestCase> Cases, RunCounts Counts, bool AnyFailed, UInt128 Fingerprint, long TotalDurationMs);
