namespace FastIngest.TestCases;

/// <summary>
/// Closes the connection of an upload whose body arrives slower than a minimum rate, so a stalled or trickling
/// client cannot keep its upload slot. Kestrel's own minimum did not stop a JUnit upload read through the body
/// stream (measured: one that stopped sending after 40 bytes still held its slot after 30 s, while the same
/// stall on the JSON path, read through the pipe, was cut after 10 s); this filter enforces it for the streamed
/// path. Like Kestrel, it counts only the time spent waiting on the client (not our parsing or decompression),
/// and only once that time passes the grace period. It stops at the end of the body.
/// </summary>
public sealed class MinRateReadStream : ReadOnlyFilterStream
{
    private readonly Stream _inner;
    private readonly int _minBytesPerSecond;
    private readonly Action _tooSlow;
    private readonly TimeProvider _clock;
    private readonly TimeSpan _grace;
    private readonly ITimer _timer;
    private long _read;
    private long _waitedTicks;
    private long _waitingSince;

    public MinRateReadStream(Stream inner, int minBytesPerSecond, TimeSpan grace, Action tooSlow, TimeProvider clock)
    {
        _inner = inner;
        _minBytesPerSecond = minBytesPerSecond;
        _tooSlow = tooSlow;
        _clock = clock;
        _grace = grace;
        _timer = clock.CreateTimer(static state => ((MinRateReadStream)state!).Check(), this, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    /// <summary>The body is in, or the request is over: no more checks.</summary>
    public void StopWatching() => _timer.Dispose();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var started = _clock.GetTimestamp();
        Volatile.Write(ref _waitingSince, started);
        int read;
        try
        {
            read = await _inner.ReadAsync(buffer, cancellationToken);
        }
        finally
        {
            Volatile.Write(ref _waitingSince, 0);
            Interlocked.Add(ref _waitedTicks, _clock.GetTimestamp() - started);
        }

        Interlocked.Add(ref _read, read);
        if (read == 0 && buffer.Length > 0)
        {
            StopWatching(); // the whole body is in: what follows (parsing, the commit) is ours, not the client's
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
        var waitingSince = Volatile.Read(ref _waitingSince);
        var waited = Interlocked.Read(ref _waitedTicks) + (waitingSince == 0 ? 0 : _clock.GetTimestamp() - waitingSince);
        var seconds = (double)waited / _clock.TimestampFrequency;
        if (seconds > _grace.TotalSeconds && Interlocked.Read(ref _read) < _minBytesPerSecond * seconds)
        {
            StopWatching();
            _tooSlow();
        }
    }
}
