namespace FastIngest.Storage;

/// <summary>Optional per-run test counts; <see cref="Total"/> equals the sum of the other three.</summary>
public readonly record struct RunCounts(long Total, long Passed, long Failed, long Skipped);
