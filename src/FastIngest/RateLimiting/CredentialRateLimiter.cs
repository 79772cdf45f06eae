using System.Globalization;
using FastIngest.Auth;
using FastIngest.Observability;

namespace FastIngest.RateLimiting;

/// <summary>
/// Sliding-window limits per (credential, policy). Only authenticated requests reach it, so failed authentications
/// never spend a tenant's budget. A token's budgets (<see cref="SlidingWindowBudget"/>, one per policy) are kept here by
/// token id and attached to its cached <see cref="Principal"/> on first use, so every principal of the token (after a
/// re-verification, in a dashboard session) spends the same budget, and one token's requests never wait on another's.
/// State is in memory: a restart starts every budget afresh.
/// </summary>
public sealed class CredentialRateLimiter
{
    private readonly RateLimitOptions _options;
    private readonly ServerMetrics _metrics;
    private readonly string[] _policyHeaders;
    private readonly Prometheus.Counter.Child[] _rejections;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SlidingWindowBudget[]> _byToken = new(StringComparer.Ordinal);
    private static readonly int s_policies = Enum.GetValues<RateLimitPolicy>().Length;

    public CredentialRateLimiter(RateLimitOptions options, ServerMetrics metrics)
    {
        _options = options;
        _metrics = metrics;
        var windowSeconds = (int)options.Window.TotalSeconds;
        _policyHeaders = Enum.GetValues<RateLimitPolicy>()
            .Select(p => string.Create(CultureInfo.InvariantCulture, $"\"{p.ToName()}\";q={options.PermitsFor(p)};w={windowSeconds}"))
            .ToArray();
        _rejections = Enum.GetValues<RateLimitPolicy>().Select(p => metrics.RateLimitRejections.WithLabels(p.ToName())).ToArray();
    }

    /// <summary>
    /// Takes one permit and writes the IETF <c>RateLimit-Policy</c> and <c>RateLimit</c> headers. Returns the
    /// seconds to wait when the budget is spent, else null.
    /// </summary>
    public int? TryAcquire(HttpContext context, RateLimitPolicy policy, Principal principal)
    {
        var permits = _options.PermitsFor(policy);
        if (permits <= 0)
        {
            return null;
        }

        var budgets = principal.RateBudgets ?? principal.AttachRateBudgets(_byToken.GetOrAdd(principal.TokenId, static _ =>
        {
            var created = new SlidingWindowBudget[s_policies];
            for (var i = 0; i < created.Length; i++)
            {
                created[i] = new SlidingWindowBudget();
            }

            return created;
        }));
        var acquired = budgets[(int)policy].TryTake(permits, _options.Window, out var remaining);
        var windowSeconds = (int)_options.Window.TotalSeconds;
        var headers = context.Response.Headers;
        headers["RateLimit-Policy"] = _policyHeaders[(int)policy];
        // Sliding window: a permit spent now returns one window from now, so t is the whole window when empty
        // and one segment otherwise (the earliest moment some budget comes back).
        var reset = remaining > 0 ? Math.Max(1, windowSeconds / SlidingWindowBudget.Segments) : windowSeconds;
        headers["RateLimit"] = string.Create(CultureInfo.InvariantCulture, $"\"{policy.ToName()}\";r={remaining};t={reset}");
        if (acquired)
        {
            return null;
        }

        _rejections[(int)policy].Inc();
        // Never earlier than the end of the window that holds the spent permits.
        return windowSeconds;
    }
}
