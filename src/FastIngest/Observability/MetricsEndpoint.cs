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
        var factory = metrics.Factory;
        var fileBytes = factory.CreateGauge("fastingest_storage_file_bytes", "Size of the database files.",
            new GaugeConfiguration { LabelNames = ["file"] });
        if (storage.StatementCache is { } statements)
        {
            // Kept by the statement caches as plain counters (a read pays one increment), published at scrape time.
            var lookups = factory.CreateCounter("fastingest_storage_statement_cache_total",
                "Prepared-statement cache look-ups by result: hit (a statement this connection prepared before, reused) or miss (prepared now).",
                new CounterConfiguration { LabelNames = ["result"] });
            var hits = lookups.WithLabels("hit");
            var misses = lookups.WithLabels("miss");
            metrics.Registry.AddBeforeCollectCallback(() =>
            {
                hits.IncTo(statements.Hits);
                misses.IncTo(statements.Misses);
            });
        }

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
