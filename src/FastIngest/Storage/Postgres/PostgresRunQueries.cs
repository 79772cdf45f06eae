using System.Buffers.Binary;
using System.Text;
using Npgsql;

namespace FastIngest.Storage.Postgres;

/// <summary>
/// The read side of runs on PostgreSQL: the same rows and pages as on SQLite. Lists are keyset pages over
/// <c>test_runs_by_time</c>; statistics read the roll-ups the ingest transactions keep current, so a read never
/// folds and never writes.
/// </summary>
public sealed class PostgresRunQueries : IRunQueries
{
    private readonly NpgsqlDataSource _db;

    public PostgresRunQueries(PostgresDatabase database) => _db = database.DataSource;

    public async ValueTask<StoredRun?> FindRunAsync(long projectKey, string runId)
    {
        await using var connection = await _db.OpenConnectionAsync();
        long key;
        long? shards;
        StoredRun run;
        await using (var find = new NpgsqlCommand(
            $"SELECT id, {RunColumns}, shards FROM test_runs WHERE project_id = $1 AND run_id = $2 AND shard = '';", connection))
        {
            find.Parameters.Add(new NpgsqlParameter { Value = projectKey });
            find.Parameters.Add(new NpgsqlParameter { Value = runId });
            await using var reader = await find.ExecuteReaderAsync();
            if (!await reader.ReadAsync())
            {
                return null;
            }

            key = reader.GetInt64(0);
            shards = reader.IsDBNull(13) ? null : reader.GetInt32(13);
            run = ReadRun(reader, 1, shards is { } count ? (int)count : 0);
        }

        if (shards is null)
        {
            return run;
        }

        var stored = new List<StoredShard>();
        await using var list = new NpgsqlCommand(
            """
            SELECT shard, status, duration_ms, count_total, count_passed, count_failed, count_skipped, received_at, build_url
            FROM test_runs WHERE head_key = $1 ORDER BY id;
            """,
            connection);
        list.Parameters.Add(new NpgsqlParameter { Value = key });
        await using (var reader = await list.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                stored.Add(new StoredShard(reader.GetString(0), reader.GetString(1), reader.GetInt64(2), Counts(reader, 3), reader.GetInt64(7),
                    reader.IsDBNull(8) ? null : reader.GetString(8)));
            }
        }

        return run with { Shards = stored };
    }

    public async ValueTask<IReadOnlyList<ListedRun>> ListRunsAsync(RunListQuery query)
    {
        var sql = new StringBuilder($"SELECT id, {RunColumns}, coalesce(shards, 0) FROM test_runs WHERE project_id = $1 AND head_key IS NULL");
        await using var connection = await _db.OpenConnectionAsync();
        await using var command = new NpgsqlCommand { Connection = connection };
        command.Parameters.Add(new NpgsqlParameter { Value = query.ProjectKey });
        void Bound(string condition, object value)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
            sql.Append(" AND ").Append(condition.Replace("$?", "$" + command.Parameters.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
                StringComparison.Ordinal));
        }

        if (query.Passed is { } passed)
        {
            Bound("status = $?", passed ? "passed" : "failed");
        }

        if (query.Branch is { } branch)
        {
            Bound("branch = $?", branch);
        }

        if (query.SinceMs is { } since)
        {
            Bound("timestamp_ms >= $?", since);
        }

        if (query.UntilMs is { } until)
        {
            Bound("timestamp_ms < $?", until);
        }

        if (query.Before is var (beforeTimestamp, beforeId))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = beforeTimestamp });
            command.Parameters.Add(new NpgsqlParameter { Value = beforeId });
            var n = command.Parameters.Count;
            sql.Append(System.Globalization.CultureInfo.InvariantCulture, $" AND (timestamp_ms, id) < (${n - 1}, ${n})");
        }

        command.Parameters.Add(new NpgsqlParameter { Value = query.Limit });
        sql.Append(System.Globalization.CultureInfo.InvariantCulture, $" ORDER BY timestamp_ms DESC, id DESC LIMIT ${command.Parameters.Count};");
        command.CommandText = sql.ToString();

        var runs = new List<ListedRun>(Math.Min(query.Limit, 1024));
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            runs.Add(new ListedRun(reader.GetInt64(0), ReadRun(reader, 1, reader.GetInt32(13))));
        }

        return runs;
    }

    public async ValueTask<IReadOnlyList<DailyRunStats>> DailyStatsAsync(long projectKey, string branch, long fromDay, long toDay)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await using var command = new NpgsqlCommand(
            """
            SELECT day, total, passed, failed, duration_max, histogram FROM run_daily_stats
            WHERE project_id = $1 AND branch = $2 AND day BETWEEN $3 AND $4 ORDER BY day;
            """,
            connection);
        command.Parameters.Add(new NpgsqlParameter { Value = projectKey });
        command.Parameters.Add(new NpgsqlParameter { Value = branch });
        command.Parameters.Add(new NpgsqlParameter { Value = fromDay });
        command.Parameters.Add(new NpgsqlParameter { Value = toDay });
        var days = new List<DailyRunStats>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            // Bucket counts back into the blob the percentile code reads (uint32 little-endian per bucket).
            var counts = reader.GetFieldValue<long[]>(5);
            var blob = new byte[DurationHistogram.BlobLength];
            for (var b = 0; b < counts.Length && (b + 1) * sizeof(uint) <= blob.Length; b++)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(b * sizeof(uint)), (uint)Math.Clamp(counts[b], 0, uint.MaxValue));
            }

            days.Add(new DailyRunStats(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), blob));
        }

        return days;
    }

    private const string RunColumns =
        "run_id, status, duration_ms, timestamp_ms, branch, commit_sha, count_total, count_passed, count_failed, count_skipped, received_at, build_url";

    /// <summary>A run from <see cref="RunColumns"/> starting at <paramref name="first"/>.</summary>
    private static StoredRun ReadRun(NpgsqlDataReader reader, int first, int shardCount) => new(
        reader.GetString(first),
        reader.GetString(first + 1),
        reader.GetInt64(first + 2),
        reader.GetInt64(first + 3),
        reader.IsDBNull(first + 4) ? null : reader.GetString(first + 4),
        reader.IsDBNull(first + 5) ? null : reader.GetString(first + 5),
        Counts(reader, first + 6),
        reader.GetInt64(first + 10),
        reader.IsDBNull(first + 11) ? null : reader.GetString(first + 11),
        shardCount);

    private static RunCounts? Counts(NpgsqlDataReader reader, int first) =>
        reader.IsDBNull(first) ? null : new RunCounts(reader.GetInt64(first), reader.GetInt64(first + 1), reader.GetInt64(first + 2), reader.GetInt64(first + 3));
}
