using System.Diagnostics;
using FastIngest.Auth;

namespace FastIngest.Observability;

/// <summary>
/// Per request: the in-flight gauge, the duration histogram by route template and status class, and one
/// access-log line (or a count in the once-a-second summary, see <see cref="AccessLogSummary"/>). Labels use the matched route template, never the raw path, so cardinality is bounded.
/// Also the last line of defence: an unexpected exception becomes a logged 500 problem without details.
/// </summary>
public sealed class RequestTelemetryMiddleware
{
    private readonly RequestDelegate _next;
    private readonly ServerMetrics _metrics;
    private readonly ILogger _logger;

    private readonly AccessLogSummary _summary;

    public RequestTelemetryMiddleware(RequestDelegate next, ServerMetrics metrics, ILoggerFactory loggers, AccessLogSummary summary)
    {
        _next = next;
        _metrics = metrics;
        _summary = summary;
        _logger = loggers.CreateLogger("FastIngest.Http");
    }

    public async Task InvokeAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        _metrics.HttpRequestsInFlight.Inc();
        try
        {
            await _next(context);
        }
        catch (Exception e) when (!context.RequestAborted.IsCancellationRequested)
        {
            Log.Unhandled(_logger, context.TraceIdentifier, RouteOf(context), e);
            if (!context.Response.HasStarted)
            {
                context.Response.Clear();
                await Http.Problems.WriteAsync(context, StatusCodes.Status500InternalServerError, "internal",
                    "Internal server error.", "The error was logged with this request id.");
            }
        }
        finally
        {
            _metrics.HttpRequestsInFlight.Dec();
            var elapsed = Stopwatch.GetElapsedTime(started);
            var route = RouteOf(context);
            var status = context.Response.StatusCode;
            _metrics.HttpRequestDuration.WithLabels(route, StatusClass(status)).Observe(elapsed.TotalSeconds);
            if (_logger.IsEnabled(LogLevel.Information))
            {
                var principal = context.Features.Get<Principal>();
                if (!_summary.TryCount(context.Request.Method, route, status, elapsed.TotalMilliseconds, context.TraceIdentifier, principal?.ProjectId))
                {
                    Log.Request(_logger, context.TraceIdentifier, context.Request.Method, route, context.Request.Path.Value ?? "",
                        status, elapsed.TotalMilliseconds, context.Response.ContentLength, principal?.ProjectId);
                }
            }
        }
    }

    private static string RouteOf(HttpContext context) =>
        context.GetEndpoint() is RouteEndpoint { RoutePattern.RawText: { } template } ? template : "unmatched";

    private static string StatusClass(int status) => status switch
    {
        < 200 => "1xx",
        < 300 => "2xx",
        < 400 => "3xx",
        < 500 => "4xx",
        _ => "5xx",
    };
}
