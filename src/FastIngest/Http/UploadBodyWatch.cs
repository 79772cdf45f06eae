using FastIngest.Configuration;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace FastIngest.Http;

/// <summary>
/// What an upload that holds one of the few upload slots owes everyone else while its body arrives: a steady
/// minimum rate and a total deadline. Measured abuse: six chunked uploads trickling at ~4 KiB/s held every slot
/// indefinitely. Disposed as soon as the body is read, so parsing and the commit are never held against the
/// client.
/// </summary>
public sealed class UploadBodyWatch : IDisposable
{
    /// <summary>
    /// 16 KiB/s of waiting time after the grace: a 100 MB report at this floor would still take under two hours,
    /// far slower than any CI runner's link, while a deliberate trickle loses its slot within seconds.
    /// </summary>
    public const int MinBytesPerSecond = 16 * 1024;

    private readonly CancellationTokenSource _deadline;
    private readonly CancellationTokenRegistration _abortAtDeadline;
    private readonly TestCases.MinRateReadStream? _stream;

    private UploadBodyWatch(HttpContext context, ServerOptions options, TimeProvider clock, bool streamed)
    {
        if (context.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rate)
        {
            rate.MinDataRate = new MinDataRate(MinBytesPerSecond, options.UploadMinRateGrace); // the pipe (JSON) path
        }

        if (streamed)
        {
            // Kestrel's minimum did not cut a stalled read through the body stream (the JUnit path): we watch it.
            _stream = new TestCases.MinRateReadStream(context.Request.Body, MinBytesPerSecond, options.UploadMinRateGrace, context.Abort, clock);
            context.Request.Body = _stream;
        }

        // Past the deadline the connection is closed: reading stops, the slot is handed on, nothing is stored.
        _deadline = new CancellationTokenSource(options.UploadDeadline, clock);
        _abortAtDeadline = _deadline.Token.Register(static state => ((HttpContext)state!).Abort(), context);
    }

    /// <summary>
    /// Starts watching; <c>streamed</c> means the body is read as a stream (JUnit), not the pipe (JSON). The caller
    /// disposes it (<c>using</c>) and may dispose it earlier, once the body is in.
    /// </summary>
    public static UploadBodyWatch Start(HttpContext context, ServerOptions options, TimeProvider clock, bool streamed) =>
        new(context, options, clock, streamed);

    /// <summary>The body is in (or the request is over): stop watching the client.</summary>
    public void Dispose()
    {
        _abortAtDeadline.Dispose();
        _deadline.Dispose();
        _stream?.StopWatching();
    }
}
