namespace FastIngest.Storage;

/// <summary>A validated test run, ready to be written. Immutable once parsed.</summary>
public sealed record RunRecord
{
    public required long ProjectKey { get; init; }

    public required string RunId { get; init; }

    /// <summary>
    /// This upload's part of a sharded run (a CI job of the pipeline), or null for a run uploaded in one piece.
    /// Shards of one run id are merged into one run; each is idempotent on its own.
    /// </summary>
    public string? Shard { get; init; }

    public required bool Passed { get; init; }

    public required long DurationMs { get; init; }

    /// <summary>When the run happened, in Unix milliseconds (UTC).</summary>
    public required long TimestampMs { get; init; }

    public string? Branch { get; init; }

    /// <summary>The CI build that produced the run; metadata, not part of the fingerprint (a retry is a duplicate either way).</summary>
    public string? BuildUrl { get; init; }

    public string? CommitSha { get; init; }

    public RunCounts? Counts { get; init; }

    /// <summary>The run's test cases in upload order, or null when the run was posted without them.</summary>
    public IReadOnlyList<TestCase>? Tests { get; init; }

    /// <summary>XxHash128 of the canonical content; equal fingerprints mean a retry, unequal ones a conflict.</summary>
    public required UInt128 Fingerprint { get; init; }

    public required long ReceivedAtMs { get; init; }

    /// <summary>
    /// Over its org's daily quota: the writer only answers whether it is already stored (a retry is still a
    /// duplicate, a changed one still a conflict) and stores nothing new (<see cref="RunWriteOutcome.OverQuota"/>).
    /// </summary>
    public bool LookupOnly { get; init; }
}
