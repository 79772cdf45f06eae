using System.Collections.Concurrent;
using System.Net;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Ingest;

public sealed class ShutdownTests
{
    [Fact]
    public async Task GracefulShutdownUnderLoadLosesNoAcknowledgedRun()
    {
        var dir = Directory.CreateTempSubdirectory("fastingest-shutdown-").FullName;
        var adminToken = FastIngest.Auth.ApiTokenFormat.Generate(FastIngest.Auth.TokenScope.Admin).Token;
        var acknowledged = new ConcurrentBag<string>();
        Tenant tenant;

        await using (var server = await TestServer.StartAsync(dir, adminToken))
        {
            tenant = await server.CreateTenantAsync("shutdown");
            using var stop = new CancellationTokenSource();
            var counter = 0;
            var workers = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var runId = $"sd-{Interlocked.Increment(ref counter)}";
                    try
                    {
                        using var response = await server.IngestAsync(tenant.ProjectToken, TestServer.Run(runId));
                        if (response.StatusCode is HttpStatusCode.Created or HttpStatusCode.OK)
                        {
                            acknowledged.Add(runId);
                        }
                    }
                    catch (HttpRequestException)
                    {
                        // Refused or reset while stopping: never acknowledged, so never promised.
                    }
                }
            })).ToArray();

            await Task.Delay(700);
            await server.StopAsync(); // what SIGTERM does
            await stop.CancelAsync();
            await Task.WhenAll(workers);
        }

        Assert.True(acknowledged.Count > 10, $"only {acknowledged.Count} runs were acknowledged before shutdown");
        await using var restarted = await TestServer.StartAsync(dir, adminToken);
        foreach (var runId in acknowledged)
        {
            using var read = await restarted.SendAsync(HttpMethod.Get, $"/v1/runs/{runId}", tenant.ProjectToken);
            Assert.True(read.StatusCode == HttpStatusCode.OK, $"acknowledged run {runId} is missing after restart");
        }
    }
}
