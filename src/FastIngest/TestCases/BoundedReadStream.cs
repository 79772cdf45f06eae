namespace FastIngest.TestCases;

/// <summary>
/// Reads through another stream and fails once more than a fixed number of bytes has come out of it. Placed
/// after decompression it is the gzip-bomb guard: a 100 KB upload that inflates to gigabytes is stopped at
/// the limit, having cost only the limit's worth of parsing.
/// </summary>
public sealed class BoundedReadStream : ReadOnlyFilterStream
{
    private readonly Stream _inner;
    private readonly long _limit;
    private readonly string _what;
    private long _read;

    public BoundedReadStream(Stream inner, long limit, string what)
    {
        _inner = inner;
        _limit = limit;
        _what = what;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Count(await _inner.ReadAsync(buffer, cancellationToken));

    public override int Read(Span<byte> buffer) => Count(_inner.Read(buffer));

    private int Count(int read)
    {
        _read += read;
        if (_read > _limit)
        {
            throw new UploadTooLargeException(_what, _limit);
        }

        return read;
    }
}
