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

            // Stop under load once the load is flowing, not after a fixed time: with every test class running in
            // parallel on two cores, 700 ms once saw a single acknowledgement.
            var flowing = System.Diagnostics.Stopwatch.StartNew();
            while (acknowledged.Count < 50 && flowing.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(20);
            }

            await server.StopAsync(); // what SIGTERM does
            await stop.CancelAsync();
            await Task.WhenAll(workers);
        }

        Assert.True(acknowledged.Count > 10, $"only {acknowledged.Count} runs were acknowledged before shutdown");
        await using var restarted = await TestServer.StartAsync(dir, adminToken);
        // Read back page by page: one GET per run would spend the token's read budget (6,000 a minute) on a fast
        // machine and answer 429, which an earlier version of this test mistook for a lost run.
        var stored = new HashSet<string>();
        string? cursor = null;
        do
        {
            using var page = await restarted.SendAsync(HttpMethod.Get, "/v1/runs?limit=1000" + (cursor is null ? "" : "&cursor=" + cursor), tenant.ProjectToken);
            var json = await Json.ReadAsync(page, HttpStatusCode.OK);
            foreach (var run in json.GetProperty("runs").EnumerateArray())
            {
                stored.Add(run.GetProperty("run_id").GetString()!);
            }

            cursor = json.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);

        var missing = acknowledged.Where(id => !stored.Contains(id)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0,
            $"{missing.Count} of {acknowledged.Count} acknowledged runs are missing after restart ({stored.Count} stored): {string.Join(", ", missing.Take(20))}");
    }
}
