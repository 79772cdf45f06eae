namespace FastIngest.Storage;

/// <summary>The read side of runs. Reads never block ingest (they use their own connections).</summary>
public interface IRunQueries
{
    ValueTask<StoredRun?> FindRunAsync(long projectKey, string runId);

    /// <summary>Newest first, at most <see cref="RunListQuery.Limit"/> rows; an index range scan, never OFFSET.</summary>
    ValueTask<IReadOnlyList<ListedRun>> ListRunsAsync(RunListQuery query);

    /// <summary>Daily roll-ups for days in [fromDay, toDay] (days since the Unix epoch, UTC); "" = all branches.</summary>
    ValueTask<IReadOnlyList<DailyRunStats>> DailyStatsAsync(long projectKey, string branch, long fromDay, long toDay);
}

public sealed record StoredRun(
    string RunId,
    string Status,
    long DurationMs,
    long TimestampMs,
    string? Branch,
    string? CommitSha,
    RunCounts? Counts,
    long ReceivedAtMs,
    string? BuildUrl = null,
    int ShardCount = 0,
    IReadOnlyList<StoredShard>? Shards = null);

/// <summary>One upload of a sharded run, as it was sent; the run holds the merged values.</summary>
public sealed record StoredShard(string Name, string Status, long DurationMs, RunCounts? Counts, long ReceivedAtMs, string? BuildUrl);
