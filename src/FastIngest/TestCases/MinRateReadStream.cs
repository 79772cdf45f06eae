namespace FastIngest.TestCases;

/// <summary>
/// Closes the connection of an upload whose body arrives slower than a minimum rate (after a grace period), so
/// a stalled or trickling client cannot keep its upload slot. Kestrel's own minimum did not stop a JUnit upload
/// read through the body stream (measured: one that stopped sending after 40 bytes still held its slot after
/// 30 s, while the same stall on the JSON path, read through the pipe, was cut after 10 s); this filter
/// enforces it for the streamed path. It stops watching at the end of the body.
/// </summary>
public sealed class MinRateReadStream : ReadOnlyFilterStream
{
    private readonly Stream _inner;
    private readonly int _minBytesPerSecond;
    private readonly Action _tooSlow;
    private readonly TimeProvider _clock;
    private readonly long _started;
    private readonly ITimer _timer;
    private long _read;

    public MinRateReadStream(Stream inner, int minBytesPerSecond, TimeSpan grace, Action tooSlow, TimeProvider clock)
    {
        _inner = inner;
        _minBytesPerSecond = minBytesPerSecond;
        _tooSlow = tooSlow;
        _clock = clock;
        _started = clock.GetTimestamp();
        _timer = clock.CreateTimer(static state => ((MinRateReadStream)state!).Check(), this, grace, TimeSpan.FromSeconds(1));
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await _inner.ReadAsync(buffer, cancellationToken);
        Interlocked.Add(ref _read, read);
        if (read == 0)
        {
            _timer.Dispose(); // the whole body is in: what follows (parsing, the commit) is ours, not the client's
        }

        return read;
    }

    public override int Read(Span<byte> buffer) => throw new NotSupportedException("Read asynchronously: the body is a request stream.");

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _timer.Dispose();
        }

        base.Dispose(disposing);
    }

    private void Check()
    {
        var seconds = _clock.GetElapsedTime(_started).TotalSeconds;
        if (Interlocked.Read(ref _read) < _minBytesPerSecond * seconds)
        {
            _timer.Dispose();
            _tooSlow();
        }
    }
}
