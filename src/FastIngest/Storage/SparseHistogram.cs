namespace FastIngest.Storage;

/// <summary>
/// A <see cref="DurationHistogram"/> stored sparsely, for one test on one day: a test's durations fall into a
/// handful of the 400-odd buckets, so the roll-up row keeps only (bucket, count) pairs as varints (typically 2-10
/// bytes) instead of the dense 1.6 KB blob a project-day can afford. Buckets and percentiles are exactly
/// <see cref="DurationHistogram"/>'s, so the two never disagree.
/// </summary>
public sealed class SparseHistogram
{
    private readonly Dictionary<int, long> _counts = [];

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
        foreach (var (bucket, count) in Sorted())
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
        foreach (var (bucket, count) in Sorted())
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

    private List<KeyValuePair<int, long>> Sorted()
    {
        var sorted = _counts.ToList();
        sorted.Sort(static (a, b) => a.Key.CompareTo(b.Key));
        return sorted;
    }

    private void Add(int bucket, long count)
    {
        if (count <= 0)
        {
            return;
        }

        System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_counts, bucket, out _) += count;
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

    internal static long ReadVarint(ref ReadOnlySpan<byte> source)
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

/// <summary>
/// Merges encoded <see cref="SparseHistogram"/>s of one test into a dense scratch array (reused from test to test)
/// and reads its percentiles: merging a window's days for thousands of tests allocates nothing per test.
/// </summary>
public sealed class DurationPercentiles
{
    private readonly byte[] _dense = new byte[DurationHistogram.BlobLength];
    private long _total;
    private long _max;
    private long _sum;

    /// <summary>Adds one day's encoded histogram, its largest duration and their sum.</summary>
    public void Add(ReadOnlySpan<byte> encoded, long maxMs, long sumMs)
    {
        _max = Math.Max(_max, maxMs);
        _sum += sumMs;
        var bucket = 0;
        while (!encoded.IsEmpty)
        {
            bucket += (int)SparseHistogram.ReadVarint(ref encoded);
            var count = SparseHistogram.ReadVarint(ref encoded);
            if (bucket >= DurationHistogram.BucketCount)
            {
                throw new InvalidDataException("A stored duration histogram names a bucket past the largest duration.");
            }

            var slot = _dense.AsSpan(bucket * sizeof(uint), sizeof(uint));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(slot,
                (uint)(System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(slot) + count));
            _total += count;
        }
    }

    /// <summary>The percentiles of what was added since the last call, which starts the next test afresh.</summary>
    public Durations TakeResult()
    {
        var result = new Durations(
            DurationHistogram.Percentile(_dense, _total, 50, _max), DurationHistogram.Percentile(_dense, _total, 95, _max), _total, _max, _sum);
        Array.Clear(_dense);
        _total = 0;
        _max = 0;
        _sum = 0;
        return result;
    }
}
