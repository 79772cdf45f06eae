using System.Buffers.Binary;

namespace FastIngest.Storage;

/// <summary>
/// Durations counted in logarithmic buckets, each 5% wider than the last, stored as a blob of little-endian
/// uint32 counts (one row per project, UTC day and branch). Merging days is adding counts, so 90 days of
/// statistics cost 90 small rows, not a scan of every run. A percentile read from it is the nearest-rank
/// percentile to within the bucket width: at most 5% off, never above the true maximum.
/// </summary>
public static class DurationHistogram
{
    public const double Growth = 1.05;
    private static readonly double s_logGrowth = Math.Log(Growth);

    /// <summary>Enough buckets for the largest accepted duration (7 days).</summary>
    public static int BucketCount { get; } = BucketOf(7L * 24 * 60 * 60 * 1000) + 1;

    public static int BlobLength => BucketCount * sizeof(uint);

    public static int BucketOf(long durationMs) => durationMs <= 0 ? 0 : (int)(Math.Log(durationMs + 1) / s_logGrowth);

    public static void Add(Span<byte> blob, long durationMs)
    {
        var slot = blob.Slice(BucketOf(durationMs) * sizeof(uint), sizeof(uint));
        BinaryPrimitives.WriteUInt32LittleEndian(slot, BinaryPrimitives.ReadUInt32LittleEndian(slot) + 1);
    }

    /// <summary>Takes one count out of the duration's bucket; an empty bucket wraps, and merging it into a count of one or more restores it.</summary>
    public static void Subtract(Span<byte> blob, long durationMs)
    {
        var slot = blob.Slice(BucketOf(durationMs) * sizeof(uint), sizeof(uint));
        BinaryPrimitives.WriteUInt32LittleEndian(slot, unchecked(BinaryPrimitives.ReadUInt32LittleEndian(slot) - 1));
    }

    /// <summary>Sets every bucket that wrapped below zero (see <see cref="Subtract"/>) to zero.</summary>
    public static void ClampWrapped(Span<byte> blob)
    {
        for (var offset = 0; offset + sizeof(uint) <= blob.Length; offset += sizeof(uint))
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(blob[offset..]) > int.MaxValue)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(blob[offset..], 0);
            }
        }
    }

    /// <summary>Adds every count of <paramref name="source"/> into <paramref name="target"/>.</summary>
    public static void Merge(Span<byte> target, ReadOnlySpan<byte> source)
    {
        for (var offset = 0; offset + sizeof(uint) <= Math.Min(target.Length, source.Length); offset += sizeof(uint))
        {
            var sum = unchecked(BinaryPrimitives.ReadUInt32LittleEndian(target[offset..]) + BinaryPrimitives.ReadUInt32LittleEndian(source[offset..]));
            BinaryPrimitives.WriteUInt32LittleEndian(target[offset..], sum);
        }
    }

    /// <summary>
    /// Nearest-rank percentile (the smallest value with at least p% of the runs at or below it), reported as
    /// the upper edge of its bucket and capped at <paramref name="maxMs"/>.
    /// </summary>
    public static long Percentile(ReadOnlySpan<byte> blob, long total, double percentile, long maxMs)
    {
        if (total <= 0)
        {
            return 0;
        }

        var rank = (long)Math.Ceiling(percentile / 100 * total);
        rank = Math.Clamp(rank, 1, total);
        long seen = 0;
        for (var bucket = 0; bucket < blob.Length / sizeof(uint); bucket++)
        {
            seen += BinaryPrimitives.ReadUInt32LittleEndian(blob[(bucket * sizeof(uint))..]);
            if (seen >= rank)
            {
                // Bucket b holds durations d with floor(log(d + 1) / log(1.05)) == b, so d < 1.05^(b+1) - 1.
                var upper = (long)Math.Ceiling(Math.Pow(Growth, bucket + 1) - 1) - 1;
                return Math.Min(Math.Max(upper, 0), maxMs);
            }
        }

        return maxMs;
    }
}
