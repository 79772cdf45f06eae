using Dapper;

namespace FastIngest.Storage.Sqlite;

[DapperAot]
public sealed class SqliteRunQueries : IRunQueries
{
    private readonly SqliteDatabase _database;

    public SqliteRunQueries(SqliteDatabase database) => _database = database;

    public StoredRun? FindRun(long projectKey, string runId)
    {
        using var connection = _database.Open();
        var row = connection.QuerySingleOrDefault<RunRow>(
            """
            SELECT run_id AS RunId, status AS Status, duration_ms AS DurationMs, timestamp_ms AS TimestampMs,
                   branch AS Branch, commit_sha AS CommitSha, count_total AS Total, count_passed AS Passed,
                   count_failed AS Failed, count_skipped AS Skipped, received_at AS ReceivedAtMs
            FROM test_runs WHERE project_id = @projectKey AND run_id = @runId;
            """,
            new { projectKey, runId });
        return row?.ToRecord();
    }

    internal sealed class RunRow
    {
        public string RunId { get; set; } = "";

        public string Status { get; set; } = "";

        public long DurationMs { get; set; }

        public long TimestampMs { get; set; }

        public string? Branch { get; set; }

        public string? CommitSha { get; set; }

        public long? Total { get; set; }

        public long? Passed { get; set; }

        public long? Failed { get; set; }

        public long? Skipped { get; set; }

        public long ReceivedAtMs { get; set; }

        public StoredRun ToRecord() => new(RunId, Status, DurationMs, TimestampMs, Branch, CommitSha,
            Total is { } total ? new RunCounts(total, Passed ?? 0, Failed ?? 0, Skipped ?? 0) : null, ReceivedAtMs);
    }
}
