namespace FastIngest.Storage;

/// <summary>
/// One execution of one test inside a run. A test retried within the run appears once per attempt; its last
/// attempt decides how it counts.
/// </summary>
public readonly record struct TestCase(
    string Suite,
    string Name,
    string? File,
    TestCaseStatus Status,
    long DurationMs,
    int Attempt,
    string? FailureMessage);
