namespace FastIngest.Storage;

/// <summary>What a page of run history is cut by. Keyset: strictly older than (TimestampMs, Id) when given.</summary>
public sealed record RunListQuery(
    long ProjectKey,
    bool? Passed,
    string? Branch,
    long? SinceMs,
    long? UntilMs,
    int Limit,
    (long TimestampMs, long Id)? Before);

/// <summary>A stored run with its internal id, which breaks ties between runs of the same timestamp.</summary>
public sealed record ListedRun(long Id, StoredRun Run);
