using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Smoke;

/// <summary>The seed's whole flow against the real AOT binary over real HTTP, then a SIGTERM shutdown.</summary>
public sealed class AotBinarySmokeTests
{
    [Fact]
    public async Task SeedFlowWorksAgainstTheAotBinaryAndSigtermExitsCleanly()
    {
        await using var binary = AotBinary.Start();
        using var client = new HttpClient { BaseAddress = binary.Address };
        var startup = await binary.WaitUntilHealthyAsync(client);
        Console.WriteLine($"AOT binary healthy {startup.TotalMilliseconds:F0} ms after start");

        var admin = (await File.ReadAllTextAsync(Path.Combine(binary.DataDirectory, "admin-token"))).Trim();
        // Stdout is what log shippers collect: it says where the token is, never the token.
        Assert.Contains(binary.Stdout, line => line.Contains(Path.Combine(binary.DataDirectory, "admin-token"), StringComparison.Ordinal));

        var orgId = (await PostAsync(client, "/orgs", admin, """{"name":"Acme Corp"}""", HttpStatusCode.Created)).GetProperty("id").GetString();
        var projectId = (await PostAsync(client, "/projects", admin, $$"""{"org_id":"{{orgId}}","name":"Test Project"}""", HttpStatusCode.Created)).GetProperty("id").GetString();
        var token = (await PostAsync(client, "/tokens", admin, $$"""{"project_id":"{{projectId}}"}""", HttpStatusCode.Created)).GetProperty("token").GetString()!;

        const string Run = """{"run_id": "build-123", "status": "passed", "duration_ms": 5000, "timestamp": "2026-01-12T10:00:00Z"}""";
        Assert.False((await PostAsync(client, "/ingest", token, Run, HttpStatusCode.Created)).GetProperty("duplicate").GetBoolean());
        Assert.True((await PostAsync(client, "/ingest", token, Run, HttpStatusCode.OK)).GetProperty("duplicate").GetBoolean());
        await PostAsync(client, "/ingest", token, Run.Replace("passed", "failed", StringComparison.Ordinal), HttpStatusCode.Conflict);
        await PostAsync(client, "/ingest", token, """{"run_id": "x"}""", HttpStatusCode.BadRequest);
        await PostAsync(client, "/ingest", "fii_invalid", Run, HttpStatusCode.Unauthorized);

        using (var read = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/v1/runs/build-123") { Headers = { Authorization = new("Bearer", token) } }))
        {
            Assert.Equal("passed", (await Json.ReadAsync(read, HttpStatusCode.OK)).GetProperty("status").GetString());
        }

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode);
        using (var traced = new HttpRequestMessage(HttpMethod.Get, "/healthz") { Headers = { { "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" } } })
        using (var answer = await client.SendAsync(traced))
        {
            // Trace context survives trimming: the caller's trace continues in this server's span.
            Assert.StartsWith("00-4bf92f3577b34da6a3ce929d0e0e4736-", answer.Headers.GetValues("traceparent").Single(), StringComparison.Ordinal);
        }

        var metrics = await client.GetStringAsync("/metrics");
        Assert.Contains("fastingest_ingest_outcomes_total{outcome=\"created\",reason=\"\"} 1", metrics, StringComparison.Ordinal);

        binary.Signal("TERM");
        Assert.Equal(0, await binary.WaitForExitAsync(TimeSpan.FromSeconds(15)));

        var jsonLines = binary.Stdout.Where(l => l.StartsWith('{')).ToList();
        Assert.All(jsonLines, line => JsonDocument.Parse(line).Dispose());
        Assert.Contains(jsonLines, l => l.Contains("\"event\":\"server_stopped\"", StringComparison.Ordinal));
        Assert.DoesNotContain(binary.Stdout, l => l.Contains(token[4..], StringComparison.Ordinal));
        Assert.DoesNotContain(binary.Stdout, l => l.Contains(admin[4..], StringComparison.Ordinal));
    }

    [Fact]
    public async Task SeparateMetricsAddressServesOnlyMetricsAndTheApiAddressServesNoMetrics()
    {
        var metricsPort = AotBinary.FreePort();
        await using var binary = AotBinary.Start(null, null, "--metrics-listen", $"127.0.0.1:{metricsPort}");
        using var client = new HttpClient();
        await binary.WaitUntilHealthyAsync(client);
        var metrics = new Uri($"http://127.0.0.1:{metricsPort}");

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri(metrics, "/metrics"))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync(new Uri(binary.Address, "/metrics"))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync(new Uri(metrics, "/v1/runs"))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync(new Uri(binary.Address, "/v1/runs"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri(metrics, "/healthz"))).StatusCode);

        // The Host header decides nothing: a reverse proxy's public Host reaches the API, and naming the other
        // address in Host opens nothing on either port.
        using var proxied = new HttpRequestMessage(HttpMethod.Get, new Uri(binary.Address, "/v1/runs")) { Headers = { Host = "ci.example.com" } };
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.SendAsync(proxied)).StatusCode);
        using var spoofedMetrics = new HttpRequestMessage(HttpMethod.Get, new Uri(binary.Address, "/metrics")) { Headers = { Host = $"127.0.0.1:{metricsPort}" } };
        Assert.Equal(HttpStatusCode.NotFound, (await client.SendAsync(spoofedMetrics)).StatusCode);
        using var spoofedApi = new HttpRequestMessage(HttpMethod.Get, new Uri(metrics, "/v1/runs")) { Headers = { Host = binary.Address.Authority } };
        Assert.Equal(HttpStatusCode.NotFound, (await client.SendAsync(spoofedApi)).StatusCode);
    }

    [Fact]
    public async Task VersionAndHelpPrintAndExitZero()
    {
        Assert.StartsWith("fastingest ", await RunToEndAsync("--version"), StringComparison.Ordinal);
        var help = await RunToEndAsync("--help");
        Assert.Contains("--listen", help, StringComparison.Ordinal);
        Assert.Contains("FASTINGEST_DATA", help, StringComparison.Ordinal);
        Assert.Matches("^fia_[0-9A-Za-z]{61}$", (await RunToEndAsync("new-admin-token")).Trim());
    }

    [Fact]
    public async Task BadFlagExitsWithUsageErrorCode2()
    {
        var info = new ProcessStartInfo(AotBinary.Path, "--durability sometimes") { RedirectStandardError = true, RedirectStandardOutput = true };
        using var process = Process.Start(info)!;
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(2, process.ExitCode);
        Assert.Contains("--durability", error, StringComparison.Ordinal);
    }

    private static async Task<string> RunToEndAsync(string args)
    {
        var info = new ProcessStartInfo(AotBinary.Path, args) { RedirectStandardOutput = true };
        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(0, process.ExitCode);
        return output;
    }

    private static async Task<JsonElement> PostAsync(HttpClient client, string path, string token, string json, HttpStatusCode expected)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await client.SendAsync(request);
        return await Json.ReadAsync(response, expected);
    }
}
