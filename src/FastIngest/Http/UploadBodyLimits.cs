using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace FastIngest.Http;

/// <summary>
/// What an upload that holds one of the few upload slots owes everyone else: a steady minimum rate and a total
/// deadline. Measured abuse: six chunked uploads trickling at ~4 KiB/s held every slot indefinitely, because
/// Kestrel's default minimum (which we set to 1 KiB/s for every request) let them.
/// </summary>
public static class UploadBodyLimits
{
    /// <summary>
    /// 16 KiB/s after a 10 s grace: a 100 MB report at this floor would still take under two hours, far slower than
    /// any CI runner's link, while a deliberate trickle loses its slot within seconds.
    /// </summary>
    public const int MinBytesPerSecond = 16 * 1024;

    private static readonly TimeSpan s_grace = TimeSpan.FromSeconds(10);

    public static void Apply(HttpContext context, TimeSpan deadline, TimeProvider clock)
    {
        if (context.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rate)
        {
            rate.MinDataRate = new MinDataRate(MinBytesPerSecond, s_grace); // the pipe (JSON) path
        }

        // The stream (JUnit) path: Kestrel's minimum did not cut a stalled read there, so we watch it ourselves.
        var watched = new TestCases.MinRateReadStream(context.Request.Body, MinBytesPerSecond, s_grace, context.Abort, clock);
        context.Request.Body = watched;
        context.Response.RegisterForDispose(watched);

        // Past the deadline the connection is closed: reading stops, the slot is handed on, nothing is stored.
        var timer = new CancellationTokenSource(deadline);
        var registration = timer.Token.Register(static state => ((HttpContext)state!).Abort(), context);
        context.Response.RegisterForDispose(registration);
        context.Response.RegisterForDispose(timer);
    }
}
