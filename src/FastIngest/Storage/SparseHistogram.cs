namespace FastIngest.Storage;

/// <summary>
/// A <see cref="DurationHistogram"/> stored sparsely, for one test on one day: a test's durations fall into a
/// handful of the 400-odd buckets, so the roll-up row keeps only (bucket, count) pairs as varints (typically 2-10
/// bytes) instead of the dense 1.6 KB blob a project-day can afford. Buckets and percentiles are exactly
/// <see cref="DurationHistogram"/>'s, so the two never disagree.
/// </summary>
public sealed class SparseHistogram
{
    private readonly SortedDictionary<int, long> _counts = [];

    public long Total { get; private set; }

    public bool IsEmpty => Total == 0;

    public void Add(long durationMs) => Add(DurationHistogram.BucketOf(durationMs), 1);

    /// <summary>Adds every count of an encoded histogram.</summary>
    public void Merge(ReadOnlySpan<byte> encoded)
    {
        var bucket = 0;
        while (!encoded.IsEmpty)
        {
            bucket += (int)ReadVarint(ref encoded);
            Add(bucket, ReadVarint(ref encoded));
        }
    }

    public void Merge(SparseHistogram other)
    {
        foreach (var (bucket, count) in other._counts)
        {
            Add(bucket, count);
        }
    }

    /// <summary>Pairs of varints: the bucket's distance from the previous one, then its count.</summary>
    public byte[] Encode()
    {
        Span<byte> scratch = stackalloc byte[20];
        var output = new List<byte>(_counts.Count * 3);
        var previous = 0;
        foreach (var (bucket, count) in _counts)
        {
            var length = WriteVarint(scratch, (ulong)(bucket - previous));
            length += WriteVarint(scratch[length..], (ulong)count);
            output.AddRange(scratch[..length]);
            previous = bucket;
        }

        return [.. output];
    }

    /// <summary>Nearest-rank percentile, as <see cref="DurationHistogram.Percentile"/> reports it.</summary>
    public long Percentile(double percentile, long maxMs)
    {
        if (Total <= 0)
        {
            return 0;
        }

        var rank = Math.Clamp((long)Math.Ceiling(percentile / 100 * Total), 1, Total);
        long seen = 0;
        foreach (var (bucket, count) in _counts)
        {
            seen += count;
            if (seen >= rank)
            {
                var upper = (long)Math.Ceiling(Math.Pow(DurationHistogram.Growth, bucket + 1) - 1) - 1;
                return Math.Min(Math.Max(upper, 0), maxMs);
            }
        }

        return maxMs;
    }

    private void Add(int bucket, long count)
    {
        if (count <= 0)
        {
            return;
        }

        _counts[bucket] = _counts.GetValueOrDefault(bucket) + count;
        Total += count;
    }

    private static int WriteVarint(Span<byte> destination, ulong value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[i++] = (byte)value;
        return i;
    }

    private static long ReadVarint(ref ReadOnlySpan<byte> source)
    {
        ulong value = 0;
        var shift = 0;
        while (true)
        {
            if (source.IsEmpty || shift > 63)
            {
                throw new InvalidDataException("A stored duration histogram is truncated.");
            }

            var b = source[0];
            source = source[1..];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return (long)value;
            }

            shift += 7;
        }
    }
}
