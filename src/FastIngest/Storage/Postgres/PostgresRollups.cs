using System.Buffers.Binary;
using Npgsql;

namespace FastIngest.Storage.Postgres;

/// <summary>Daily run roll-ups on PostgreSQL, changed inside the transactions that add or delete runs.</summary>
internal static class PostgresRollups
{
    /// <summary>
    /// Adds roll-up deltas (runs added, or taken out by a shard merge or a purge) to the stored rows, one upsert per
    /// group in key order, so transactions on two nodes lock the rows alike. Counts never go below zero.
    /// </summary>
    public static async Task MergeAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, DailyRollups rollups)
    {
        foreach (var ((project, day, branch), group) in rollups.Groups
            .OrderBy(static g => g.Key.Project).ThenBy(static g => g.Key.Branch, StringComparer.Ordinal).ThenBy(static g => g.Key.Day))
        {
            var histogram = new long[DurationHistogram.BucketCount];
            for (var b = 0; b < histogram.Length; b++)
            {
                // Buckets are uint32 deltas that wrap below zero (a merged run taken out): read back as signed.
                histogram[b] = BinaryPrimitives.ReadInt32LittleEndian(group.Histogram.AsSpan(b * sizeof(uint)));
            }

            await using var upsert = new NpgsqlCommand(
                """
                INSERT INTO run_daily_stats (project_id, day, branch, total, passed, failed, duration_max, histogram)
                VALUES ($1, $2, $3, GREATEST($4, 0), GREATEST($5, 0), GREATEST($6, 0), $7, ARRAY(SELECT GREATEST(c, 0) FROM unnest($8::bigint[]) AS c))
                ON CONFLICT (project_id, branch, day) DO UPDATE SET
                    total = GREATEST(run_daily_stats.total + EXCLUDED.total + LEAST($4, 0), 0),
                    passed = GREATEST(run_daily_stats.passed + EXCLUDED.passed + LEAST($5, 0), 0),
                    failed = GREATEST(run_daily_stats.failed + EXCLUDED.failed + LEAST($6, 0), 0),
                    duration_max = GREATEST(run_daily_stats.duration_max, EXCLUDED.duration_max),
                    histogram = ARRAY(
                        SELECT GREATEST(coalesce(s, 0) + coalesce(d, 0), 0)
                        FROM unnest(run_daily_stats.histogram, $8::bigint[]) WITH ORDINALITY AS u(s, d, n) ORDER BY n);
                """,
                connection, transaction);
            foreach (var value in new object[] { project, day, branch, group.Total, group.Passed, group.Failed, group.DurationMax, histogram })
            {
                upsert.Parameters.Add(new NpgsqlParameter { Value = value });
            }

            await upsert.ExecuteNonQueryAsync();
        }
    }
}
