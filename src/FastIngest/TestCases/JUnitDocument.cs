namespace FastIngest.TestCases;

/// <summary>What a JUnit file says: its test cases, and the run's duration and start when the file records them.</summary>
public sealed record JUnitDocument(TestCaseSet Tests, long? DurationMs, DateTimeOffset? Timestamp);
