namespace FastIngest.Storage;

/// <summary>The read side of runs. Reads never block ingest (they use their own connections).</summary>
public interface IRunQueries
{
    StoredRun? FindRun(long projectKey, string runId);
}

public sealed record StoredRun(
    string RunId,
    string Status,
    long DurationMs,
    long TimestampMs,
    string? Branch,
    string? CommitSha,
    RunCounts? Counts,
    long ReceivedAtMs);
