namespace FastIngest.Storage;

/// <summary>One UTC day of one project and one branch (or of all branches), read from the daily roll-up.</summary>
public sealed record DailyRunStats(long Day, long Total, long Passed, long Failed, long DurationMaxMs, byte[] Histogram);
