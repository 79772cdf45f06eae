using FastIngest.Http;
using FastIngest.Observability;

namespace FastIngest.Auth;

/// <summary>
/// The HTTP face of <see cref="Authenticator"/>: authenticates a request or answers 401/503 itself, counting
/// and logging the failure (with its reason, never the token).
/// </summary>
public sealed class RequestAuthentication
{
    private readonly Authenticator _authenticator;
    private readonly ServerMetrics _metrics;
    private readonly ILogger _logger;

    public RequestAuthentication(Authenticator authenticator, ServerMetrics metrics, ILoggerFactory loggers)
    {
        _authenticator = authenticator;
        _metrics = metrics;
        _logger = loggers.CreateLogger("FastIngest.Security");
    }

    /// <summary>The caller's principal, or null after the failure response has been written.</summary>
    public async ValueTask<Principal?> AuthenticateAsync(HttpContext context)
    {
        var result = await _authenticator.AuthenticateAsync(context.Request.Headers.Authorization);
        if (result.Principal is { } principal)
        {
            context.Features.Set(principal);
            return principal;
        }

        var reason = result.Failure.ToName();
        _metrics.AuthFailures.WithLabels(reason).Inc();
        Log.AuthFailed(_logger, context.TraceIdentifier, reason,
            context.GetEndpoint() is RouteEndpoint { RoutePattern.RawText: { } route } ? route : "unmatched",
            context.Connection.RemoteIpAddress?.ToString());
        await Problems.Unauthorized(context, result.Failure);
        return null;
    }
}
