using System.Net;
using FastIngest.Tests.Infrastructure;
using FastIngest.Tests.Smoke;

namespace FastIngest.Tests.Http;

public sealed class ListenerSeparationTests
{
    [Fact]
    public async Task PortNotHostHeaderDecidesWhatEachAddressServes()
    {
        var apiPort = AotBinary.FreePort();
        var metricsPort = AotBinary.FreePort();
        await using var server = await TestServer.StartAsync(configure: o => o with
        {
            Listen = new IPEndPoint(IPAddress.Loopback, apiPort),
            MetricsListen = new IPEndPoint(IPAddress.Loopback, metricsPort),
        });
        var tenant = await server.CreateTenantAsync("proxied");
        using var client = new HttpClient();
        var api = new Uri($"http://127.0.0.1:{apiPort}");
        var metrics = new Uri($"http://127.0.0.1:{metricsPort}");

        // A reverse proxy's public Host reaches the API.
        using var proxied = new HttpRequestMessage(HttpMethod.Get, new Uri(api, "/v1/runs")) { Headers = { Host = "ci.example.com" } };
        proxied.Headers.Authorization = new("Bearer", tenant.ProjectToken);
        using (var response = await client.SendAsync(proxied))
        {
            await Json.ReadAsync(response, HttpStatusCode.OK);
        }

        // Naming the other address in Host opens nothing on either port.
        foreach (var (address, path, host) in new[] { (api, "/metrics", $"127.0.0.1:{metricsPort}"), (metrics, "/v1/runs", $"127.0.0.1:{apiPort}") })
        {
            using var spoofed = new HttpRequestMessage(HttpMethod.Get, new Uri(address, path)) { Headers = { Host = host } };
            using var response = await client.SendAsync(spoofed);
            await Json.ReadProblemAsync(response, HttpStatusCode.NotFound);
        }

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri(metrics, "/metrics"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri(metrics, "/readyz"))).StatusCode);
    }
}
