namespace FastIngest.Http;

/// <summary>
/// With <c>--metrics-listen</c>, the API answers only on the API address and <c>/metrics</c> only on the metrics
/// address (health probes on both), so a private scrape port never exposes the API and the API port never
/// exposes metrics. Decided by the port the connection arrived on, never by the Host header: a reverse proxy
/// sends its own public Host, and anyone can send any Host.
/// </summary>
public static class ListenerSeparation
{
    public static IApplicationBuilder UseListenerSeparation(this IApplicationBuilder app, int apiPort, int metricsPort) =>
        app.Use((context, next) =>
        {
            var path = context.Request.Path;
            if (path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz"))
            {
                return next(context);
            }

            var onMetricsPort = context.Connection.LocalPort == metricsPort;
            var isMetrics = path.StartsWithSegments("/metrics");
            if (onMetricsPort != isMetrics || (!onMetricsPort && context.Connection.LocalPort != apiPort))
            {
                return Problems.WriteAsync(context, StatusCodes.Status404NotFound, "not-found", "Not found.",
                    $"No route matches {context.Request.Method} {path} on this address.");
            }

            return next(context);
        });
}
