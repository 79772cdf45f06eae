namespace FastIngest.Ingest;

/// <summary>The ingest body's field names as UTF-8 literals, compared against the raw bytes without decoding.</summary>
internal static class IngestFields
{
    public static ReadOnlySpan<byte> RunId => "run_id"u8;

    public static ReadOnlySpan<byte> Shard => "shard"u8;

    public static ReadOnlySpan<byte> Status => "status"u8;

    public static ReadOnlySpan<byte> DurationMs => "duration_ms"u8;

    public static ReadOnlySpan<byte> Timestamp => "timestamp"u8;

    public static ReadOnlySpan<byte> Branch => "branch"u8;

    public static ReadOnlySpan<byte> BuildUrl => "build_url"u8;

    public static ReadOnlySpan<byte> CommitSha => "commit_sha"u8;

    public static ReadOnlySpan<byte> Counts => "counts"u8;

    public static ReadOnlySpan<byte> Total => "total"u8;

    public static ReadOnlySpan<byte> Passed => "passed"u8;

    public static ReadOnlySpan<byte> Failed => "failed"u8;

    public static ReadOnlySpan<byte> Skipped => "skipped"u8;

    public static ReadOnlySpan<byte> Tests => "tests"u8;

    public static ReadOnlySpan<byte> Name => "name"u8;

    public static ReadOnlySpan<byte> Suite => "suite"u8;

    public static ReadOnlySpan<byte> ClassName => "classname"u8;

    public static ReadOnlySpan<byte> File => "file"u8;

    public static ReadOnlySpan<byte> Attempt => "attempt"u8;

    public static ReadOnlySpan<byte> FailureMessage => "failure_message"u8;

    public const int MaxRunIdLength = 128;

    /// <summary>
    /// Shards one run may have: a CI pipeline has tens of jobs, rarely hundreds. Bounds what one run costs every
    /// read that shows it (its shard list, its tests' paging) whatever a client sends.
    /// </summary>
    public const int MaxShardsPerRun = 1000;
    public const int MaxBranchLength = 255;
    public const int MinCommitShaLength = 7;
    public const int MaxCommitShaLength = 64;
    public const long MaxDurationMs = 7L * 24 * 60 * 60 * 1000;
    public const long MaxCount = 1_000_000_000;
}
