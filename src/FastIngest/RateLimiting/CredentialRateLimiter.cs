using System.Globalization;
using System.Threading.RateLimiting;
using FastIngest.Observability;

namespace FastIngest.RateLimiting;

/// <summary>
/// Sliding-window limits per (credential, policy), from System.Threading.RateLimiting. Only authenticated
/// requests reach it, keyed by token id, so failed authentications never spend a tenant's budget. State is
/// in memory: a restart starts every budget afresh.
/// </summary>
public sealed class CredentialRateLimiter : IDisposable
{
    private const int Segments = 6;
    private readonly RateLimitOptions _options;
    private readonly PartitionedRateLimiter<(RateLimitPolicy Policy, string TokenId)> _limiter;
    private readonly ServerMetrics _metrics;
    private readonly string[] _policyHeaders;

    public CredentialRateLimiter(RateLimitOptions options, ServerMetrics metrics)
    {
        _options = options;
        _metrics = metrics;
        _limiter = PartitionedRateLimiter.Create<(RateLimitPolicy Policy, string TokenId), (RateLimitPolicy, string)>(key =>
        {
            var permits = options.PermitsFor(key.Policy);
            return permits <= 0
                ? RateLimitPartition.GetNoLimiter(key)
                : RateLimitPartition.GetSlidingWindowLimiter(key, _ => new SlidingWindowRateLimiterOptions
                {
                    PermitLimit = permits,
                    Window = options.Window,
                    SegmentsPerWindow = Segments,
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
        });
        var windowSeconds = (int)options.Window.TotalSeconds;
        _policyHeaders = Enum.GetValues<RateLimitPolicy>()
            .Select(p => string.Create(CultureInfo.InvariantCulture, $"\"{p.ToName()}\";q={options.PermitsFor(p)};w={windowSeconds}"))
            .ToArray();
    }

    /// <summary>
    /// Takes one permit and writes the IETF <c>RateLimit-Policy</c> and <c>RateLimit</c> headers. Returns the
    /// seconds to wait when the budget is spent, else null.
    /// </summary>
    public int? TryAcquire(HttpContext context, RateLimitPolicy policy, string tokenId)
    {
        var permits = _options.PermitsFor(policy);
        if (permits <= 0)
        {
            return null;
        }

        var key = (policy, tokenId);
        using var lease = _limiter.AttemptAcquire(key);
        var remaining = _limiter.GetStatistics(key)?.CurrentAvailablePermits ?? 0;
        var windowSeconds = (int)_options.Window.TotalSeconds;
        var headers = context.Response.Headers;
        headers["RateLimit-Policy"] = _policyHeaders[(int)policy];
        // Sliding window: a permit spent now returns one window from now, so t is the whole window when empty
        // and one segment otherwise (the earliest moment some budget comes back).
        var reset = remaining > 0 ? Math.Max(1, windowSeconds / Segments) : windowSeconds;
        headers["RateLimit"] = string.Create(CultureInfo.InvariantCulture, $"\"{policy.ToName()}\";r={remaining};t={reset}");
        if (lease.IsAcquired)
        {
            return null;
        }

        _metrics.RateLimitRejections.WithLabels(policy.ToName()).Inc();
        // Never earlier than the end of the window that holds the spent permits.
        return windowSeconds;
    }

    public void Dispose() => _limiter.Dispose();
}
