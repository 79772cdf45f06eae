using FastIngest.Storage;
using Prometheus;

namespace FastIngest.Observability;

/// <summary>
/// <c>GET /metrics</c> in Prometheus text format. Storage sizes are read at scrape time, so they cost
/// nothing between scrapes.
/// </summary>
public sealed class MetricsEndpoint
{
    private readonly ServerMetrics _metrics;

    public MetricsEndpoint(ServerMetrics metrics, IStorageStatistics storage)
    {
        _metrics = metrics;
        var factory = Metrics.WithCustomRegistry(metrics.Registry);
        var fileBytes = factory.CreateGauge("fastingest_storage_file_bytes", "Size of the database files.",
            new GaugeConfiguration { LabelNames = ["file"] });
        metrics.Registry.AddBeforeCollectCallback(async cancellation =>
        {
            foreach (var (name, bytes) in await storage.SizesAsync(cancellation))
            {
                fileBytes.WithLabels(name).Set(bytes);
            }
        });
    }

    public async Task HandleAsync(HttpContext context)
    {
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await _metrics.Registry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted);
    }
}
