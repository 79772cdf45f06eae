using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace FastIngest.Http;

/// <summary>
/// Kestrel limits, chosen on purpose: small headers and 1 MiB bodies for management routes (ingest raises the
/// body limit per request to its own: --max-body for JSON, --max-junit for JUnit XML),
/// slow-header and slow-body clients dropped so they cannot hold connections hostage.
/// </summary>
public static class KestrelLimits
{
    public static void Apply(KestrelServerOptions kestrel)
    {
        kestrel.AddServerHeader = false;
        var limits = kestrel.Limits;
        limits.MaxRequestBodySize = 1024 * 1024;
        limits.MaxRequestHeaderCount = 64;
        limits.MaxRequestHeadersTotalSize = 32 * 1024;
        limits.MaxRequestLineSize = 8 * 1024;
        limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
        limits.KeepAliveTimeout = TimeSpan.FromSeconds(120);
        limits.MaxConcurrentConnections = 10_000;
        limits.MaxConcurrentUpgradedConnections = 0;
        limits.MinRequestBodyDataRate = new MinDataRate(bytesPerSecond: 1024, gracePeriod: TimeSpan.FromSeconds(5));
        limits.MinResponseDataRate = new MinDataRate(bytesPerSecond: 1024, gracePeriod: TimeSpan.FromSeconds(5));
    }
}
