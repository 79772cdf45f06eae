using FastIngest.Http;
using FastIngest.Observability;
using FastIngest.RateLimiting;

namespace FastIngest.Auth;

/// <summary>
/// The HTTP face of <see cref="Authenticator"/>: authenticates a request and takes a rate-limit permit for its
/// policy, or answers 401/429/503 itself, counting and logging the failure (with its reason, never the token).
/// Only authenticated requests reach the rate limiter, so failures never spend a tenant's budget.
/// </summary>
public sealed class RequestAuthentication
{
    private readonly Authenticator _authenticator;
    private readonly CredentialRateLimiter _limiter;
    private readonly ServerMetrics _metrics;
    private readonly ILogger _logger;

    public RequestAuthentication(Authenticator authenticator, CredentialRateLimiter limiter,
        ServerMetrics metrics, ILoggerFactory loggers)
    {
        _authenticator = authenticator;
        _limiter = limiter;
        _metrics = metrics;
        _logger = loggers.CreateLogger("FastIngest.Security");
    }

    /// <summary>
    /// For requests that authenticate, then read a body, then change something: true (401 written) when the
    /// token was revoked, or its project or org deleted, while the body was arriving. Checked right before the
    /// change, so a slow body cannot carry a revoked credential past its revocation.
    /// </summary>
    public static async ValueTask<bool> RefuseIfRetiredAsync(HttpContext context, Principal principal)
    {
        if (!principal.IsRetired)
        {
            return false;
        }

        await Problems.Unauthorized(context, AuthFailure.Revoked);
        return true;
    }

    /// <summary>The caller's principal, or null after the failure response has been written.</summary>
    public async ValueTask<Principal?> AuthenticateAsync(HttpContext context, RateLimitPolicy policy)
    {
        var client = context.Connection.RemoteIpAddress;
        var result = await _authenticator.AuthenticateAsync(context.Request.Headers.Authorization, client);
        if (result.Principal is { } principal)
        {
            context.Features.Set(principal);
            if (_limiter.TryAcquire(context, policy, principal) is { } retryAfter)
            {
                Log.RateLimited(_logger, context.TraceIdentifier, policy.ToName(), principal.TokenId, retryAfter);
                await Problems.TooManyRequests(context, $"The '{policy.ToName()}' budget of this token is spent.", retryAfter);
                return null;
            }

            return principal;
        }

        var reason = result.Failure.ToName();
        _metrics.AuthFailures.WithLabels(reason).Inc();
        var route = context.GetEndpoint() is RouteEndpoint { RoutePattern.RawText: { } template } ? template : "unmatched";
        Log.AuthFailed(_logger, context.TraceIdentifier, reason, route, client?.ToString());
        if (result.Failure == AuthFailure.Blocked)
        {
            _metrics.RateLimitRejections.WithLabels("auth_block").Inc();
            await Problems.TooManyRequests(context, "Too many wrong secrets were presented for this token id.", result.RetryAfterSeconds);
            return null;
        }

        await Problems.Unauthorized(context, result.Failure);
        return null;
    }
}
