using Dapper;

namespace FastIngest.Storage.Sqlite;

[DapperAot]
public sealed class SqliteRunQueries : IRunQueries
{
    private readonly SqliteDatabase _database;
    private readonly SqliteRollupFolder _folder;

    public SqliteRunQueries(SqliteDatabase database, SqliteRollupFolder folder)
    {
        _database = database;
        _folder = folder;
    }

    public ValueTask<StoredRun?> FindRunAsync(long projectKey, string runId)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        // The run is the row with shard '': a run uploaded in one piece, or a sharded run's head (merged values).
        var row = connection.QuerySingleOrDefault<RunRow>(
            """
            SELECT id AS Key, run_id AS RunId, status AS Status, duration_ms AS DurationMs, timestamp_ms AS TimestampMs,
                   branch AS Branch, commit_sha AS CommitSha, count_total AS Total, count_passed AS Passed,
                   count_failed AS Failed, count_skipped AS Skipped, received_at AS ReceivedAtMs, build_url AS BuildUrl,
                   shards AS Shards
            FROM test_runs WHERE project_id = @projectKey AND run_id = @runId AND shard = '';
            """,
            new { projectKey, runId });
        if (row is null)
        {
            return default;
        }

        var run = row.ToRecord();
        if (row.Shards is null)
        {
            return new(run);
        }

        var shards = new List<StoredShard>();
        foreach (var shard in connection.Query<ShardRow>(
            """
            SELECT shard AS Name, status AS Status, duration_ms AS DurationMs, count_total AS Total, count_passed AS Passed,
                   count_failed AS Failed, count_skipped AS Skipped, received_at AS ReceivedAtMs, build_url AS BuildUrl
            FROM test_runs INDEXED BY test_runs_by_head WHERE head_key = @key ORDER BY id;
            """,
            new { key = row.Key }))
        {
            shards.Add(new StoredShard(shard.Name, shard.Status, shard.DurationMs, Counts(shard.Total, shard.Passed, shard.Failed, shard.Skipped),
                shard.ReceivedAtMs, shard.BuildUrl));
        }

        return new(run with { Shards = shards });
    }

    public ValueTask<IReadOnlyList<ListedRun>> ListRunsAsync(RunListQuery query)
    {
        // Composed per filter set so every bound is a real range on test_runs_by_time
        // (project_id, timestamp_ms DESC, id DESC): a page costs the same at any depth.
        var sql = new System.Text.StringBuilder("""
            SELECT id, run_id, status, duration_ms, timestamp_ms, branch, commit_sha,
                   count_total, count_passed, count_failed, count_skipped, received_at, build_url, coalesce(shards, 0)
            FROM test_runs INDEXED BY test_runs_by_time
            WHERE project_id = $project AND head_key IS NULL
            """);
        if (query.Passed is not null)
        {
            sql.Append(" AND status = $status");
        }

        if (query.Branch is not null)
        {
            sql.Append(" AND branch = $branch");
        }

        if (query.SinceMs is not null)
        {
            sql.Append(" AND timestamp_ms >= $since");
        }

        if (query.UntilMs is not null)
        {
            sql.Append(" AND timestamp_ms < $until");
        }

        if (query.Before is not null)
        {
            sql.Append(" AND (timestamp_ms, id) < ($beforeTs, $beforeId)");
        }

        sql.Append(" ORDER BY timestamp_ms DESC, id DESC LIMIT $limit;");

        // One text per filter set (at most 32), each prepared once per connection. Every parameter is bound; the
        // ones a text does not name are ignored.
        using var lease = _database.Read();
        var connection = lease.Connection;
        using var command = connection.Rent(sql.ToString());
        command.Parameters.AddWithValue("$project", query.ProjectKey);
        command.Parameters.AddWithValue("$status", query.Passed is { } passed ? (passed ? "passed" : "failed") : DBNull.Value);
        command.Parameters.AddWithValue("$branch", (object?)query.Branch ?? DBNull.Value);
        command.Parameters.AddWithValue("$since", (object?)query.SinceMs ?? DBNull.Value);
        command.Parameters.AddWithValue("$until", (object?)query.UntilMs ?? DBNull.Value);
        command.Parameters.AddWithValue("$beforeTs", (object?)query.Before?.TimestampMs ?? DBNull.Value);
        command.Parameters.AddWithValue("$beforeId", (object?)query.Before?.Id ?? DBNull.Value);
        command.Parameters.AddWithValue("$limit", query.Limit);

        var runs = new List<ListedRun>(Math.Min(query.Limit, 1024));
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            RunCounts? counts = reader.IsDBNull(7) ? null
                : new RunCounts(reader.GetInt64(7), reader.GetInt64(8), reader.GetInt64(9), reader.GetInt64(10));
            runs.Add(new ListedRun(reader.GetInt64(0), new StoredRun(
                reader.GetString(1), reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4),
                reader.IsDBNull(5) ? null : reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6),
                counts, reader.GetInt64(11), reader.IsDBNull(12) ? null : reader.GetString(12), reader.GetInt32(13))));
        }

        return new(runs);
    }

    public async ValueTask<IReadOnlyList<DailyRunStats>> DailyStatsAsync(long projectKey, string branch, long fromDay, long toDay)
    {
        // Whatever committed since the last background fold is folded now, by the writer, so statistics are exact.
        // (Only the run roll-ups: a backlog of per-test folding never holds up a statistics read.)
        await _folder.FoldRunsAsync();
        using var lease = _database.Read();
        var connection = lease.Connection;
        return connection.Query<DailyRow>(
            """
            SELECT day AS Day, total AS Total, passed AS Passed, failed AS Failed, duration_max AS DurationMax,
                   histogram AS Histogram
            FROM run_daily_stats
            WHERE project_id = @projectKey AND branch = @branch AND day BETWEEN @fromDay AND @toDay
            ORDER BY day;
            """,
            new { projectKey, branch, fromDay, toDay })
            .Select(static r => new DailyRunStats(r.Day, r.Total, r.Passed, r.Failed, r.DurationMax, r.Histogram))
            .ToList();
    }

    internal sealed class DailyRow
    {
        public long Day { get; set; }

        public long Total { get; set; }

        public long Passed { get; set; }

        public long Failed { get; set; }

        public long DurationMax { get; set; }

        public byte[] Histogram { get; set; } = [];
    }

    private static RunCounts? Counts(long? total, long? passed, long? failed, long? skipped) =>
        total is { } t ? new RunCounts(t, passed ?? 0, failed ?? 0, skipped ?? 0) : null;

    internal sealed class ShardRow
    {
        public string Name { get; set; } = "";

        public string Status { get; set; } = "";

        public long DurationMs { get; set; }

        public long? Total { get; set; }

        public long? Passed { get; set; }

        public long? Failed { get; set; }

        public long? Skipped { get; set; }

        public long ReceivedAtMs { get; set; }

        public string? BuildUrl { get; set; }
    }

    internal sealed class RunRow
    {
        public long Key { get; set; }

        public long? Shards { get; set; }

        public string RunId { get; set; } = "";

        public string Status { get; set; } = "";

        public long DurationMs { get; set; }

        public long TimestampMs { get; set; }

        public string? Branch { get; set; }

        public string? BuildUrl { get; set; }

        public string? CommitSha { get; set; }

        public long? Total { get; set; }

        public long? Passed { get; set; }

        public long? Failed { get; set; }

        public long? Skipped { get; set; }

        public long ReceivedAtMs { get; set; }

        public StoredRun ToRecord() => new(RunId, Status, DurationMs, TimestampMs, Branch, CommitSha,
            Counts(Total, Passed, Failed, Skipped), ReceivedAtMs, BuildUrl, (int)(Shards ?? 0));
    }
}
