using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Observability;

public sealed partial class MetricsTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task AllocatedBytesGrowByAtLeastWhatTheProcessAllocatedMeanwhile()
    {
        var before = (await ScrapeAsync())["fastingest_gc_allocated_bytes_total"];
        var block = new byte[1 << 20]; // 1 MiB on the managed heap of this (in-process) server
        GC.KeepAlive(block);
        var after = (await ScrapeAsync())["fastingest_gc_allocated_bytes_total"];

        Assert.True(before > 0, $"allocated before: {before}");
        Assert.True(after - before >= 1 << 20, $"allocated grew by {after - before} bytes across a 1 MiB allocation");
    }

    [Fact]
    public async Task CountersMoveByExactlyTheRequestsMade()
    {
        var tenant = await _server.CreateTenantAsync("metrics");
        var before = await ScrapeAsync();

        (await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("m-1"))).Dispose();
        (await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("m-2"))).Dispose();
        (await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("m-1"))).Dispose();
        (await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("m-1", "failed"))).Dispose();
        (await _server.IngestAsync(tenant.ProjectToken, "{}")).Dispose();
        (await _server.IngestAsync("fii_bad", TestServer.Run("m-3"))).Dispose();
        (await _server.IngestAsync(tenant.OrgToken, TestServer.Run("m-4"))).Dispose();

        var after = await ScrapeAsync();
        double Delta(string series) => after.GetValueOrDefault(series) - before.GetValueOrDefault(series);

        Assert.Equal(2, Delta("fastingest_ingest_outcomes_total{outcome=\"created\",reason=\"\"}"));
        Assert.Equal(1, Delta("fastingest_ingest_outcomes_total{outcome=\"duplicate\",reason=\"\"}"));
        Assert.Equal(1, Delta("fastingest_ingest_outcomes_total{outcome=\"conflict\",reason=\"\"}"));
        Assert.Equal(1, Delta("fastingest_ingest_outcomes_total{outcome=\"rejected\",reason=\"invalid_body\"}"));
        Assert.Equal(1, Delta("fastingest_ingest_outcomes_total{outcome=\"rejected\",reason=\"scope\"}"));
        Assert.Equal(1, Delta("fastingest_auth_failures_total{reason=\"malformed\"}"));
        Assert.Equal(4, Delta("fastingest_ingest_batch_size_sum"));
        Assert.Equal(6, Delta("fastingest_http_request_duration_seconds_count{route=\"/v1/ingest\",status_class=\"2xx\"}")
            + Delta("fastingest_http_request_duration_seconds_count{route=\"/v1/ingest\",status_class=\"4xx\"}") - 1);
        Assert.Equal(5, Delta("fastingest_auth_token_cache_total{result=\"hit\"}"));

        // Per stage, successful ones only: six requests authenticated (not the bad token), four bodies parsed (not
        // "{}"), and the four valid runs waited in the writer's queue once each.
        Assert.Equal(6, Delta("fastingest_ingest_stage_duration_seconds_count{stage=\"auth\"}"));
        Assert.Equal(4, Delta("fastingest_ingest_stage_duration_seconds_count{stage=\"parse\"}"));
        Assert.Equal(4, Delta("fastingest_ingest_stage_duration_seconds_count{stage=\"queue_wait\"}"));
    }

    [Fact]
    public async Task EveryStorageCallIsTimedByNameAndASlowOneIsLoggedWithoutItsParameters()
    {
        await using var server = await TestServer.StartAsync(configure: o => o with { SlowStorageCall = TimeSpan.Zero }); // every call is "slow"
        var tenant = await server.CreateTenantAsync("timed");
        (await server.IngestAsync(tenant.ProjectToken, TestServer.Run("secret-run-name"))).Dispose();
        var before = await ScrapeAsync(server);

        (await server.SendAsync(HttpMethod.Get, "/v1/runs/secret-run-name", tenant.ProjectToken)).Dispose();
        (await server.SendAsync(HttpMethod.Get, "/v1/runs/secret-run-name", tenant.ProjectToken)).Dispose();

        var after = await ScrapeAsync(server);
        Assert.Equal(2, after.GetValueOrDefault("fastingest_storage_call_duration_seconds_count{call=\"find_run\"}")
            - before.GetValueOrDefault("fastingest_storage_call_duration_seconds_count{call=\"find_run\"}"));
        var slow = server.Logs.Lines.Where(static l => l.Contains("\"event\":\"slow_storage_call\"", StringComparison.Ordinal)).ToList();
        Assert.Contains(slow, static l => l.Contains("\"call\":\"find_run\"", StringComparison.Ordinal) && l.Contains("\"duration_ms\":", StringComparison.Ordinal));
        Assert.DoesNotContain(slow, static l => l.Contains("secret-run-name", StringComparison.Ordinal));
    }

    [Fact]
    public async Task StatementCacheHitsAndMissesAreTheDatabasesOwnCounts()
    {
        var tenant = await _server.CreateTenantAsync("statements");
        (await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("prepared"))).Dispose();
        for (var i = 0; i < 5; i++)
        {
            using var read = await _server.SendAsync(HttpMethod.Get, "/v1/runs/prepared", tenant.ProjectToken);
            Assert.True(read.StatusCode == HttpStatusCode.OK, $"read {i}: {(int)read.StatusCode} {await read.Content.ReadAsStringAsync()}");
        }

        // Background upkeep reads too, so the scrape is bracketed by the counters it publishes.
        var counters = _server.Service<FastIngest.Storage.Sqlite.SqliteDatabase>().StatementCache;
        var (hitsBefore, missesBefore) = (counters.Hits, counters.Misses);
        var scraped = await ScrapeAsync();
        var (hitsAfter, missesAfter) = (counters.Hits, counters.Misses);

        Assert.InRange(scraped["fastingest_storage_statement_cache_total{result=\"hit\"}"], hitsBefore, hitsAfter);
        Assert.InRange(scraped["fastingest_storage_statement_cache_total{result=\"miss\"}"], missesBefore, missesAfter);
        Assert.True(hitsAfter > 0, $"five identical reads and the server's own upkeep made no statement cache hit ({missesAfter} misses)");
    }

    [Fact]
    public async Task LabelsCarryRouteTemplatesNeverRawPathsOrIds()
    {
        var tenant = await _server.CreateTenantAsync("labels");
        (await _server.SendAsync(HttpMethod.Get, "/v1/runs/some-secret-looking-run-id", tenant.ProjectToken)).Dispose();
        (await _server.SendAsync(HttpMethod.Get, $"/v1/projects/{tenant.ProjectId}/tokens", tenant.OrgToken)).Dispose();
        (await _server.Client.GetAsync("/no/such/path/abc123")).Dispose();

        using var response = await _server.Client.GetAsync("/metrics");
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("route=\"/v1/runs/{**run_id}\"", text, StringComparison.Ordinal);
        Assert.Contains("route=\"/v1/projects/{id}/tokens\"", text, StringComparison.Ordinal);
        Assert.Contains("route=\"unmatched\"", text, StringComparison.Ordinal);
        Assert.DoesNotContain("some-secret-looking-run-id", text, StringComparison.Ordinal);
        Assert.DoesNotContain(tenant.ProjectId, text, StringComparison.Ordinal);
        Assert.DoesNotContain("abc123", text, StringComparison.Ordinal);
        Assert.Contains("fastingest_storage_file_bytes{file=\"db\"}", text, StringComparison.Ordinal);
        Assert.Contains("process_cpu_seconds_total", text, StringComparison.Ordinal);
    }

    private Task<Dictionary<string, double>> ScrapeAsync() => ScrapeAsync(_server);

    private static async Task<Dictionary<string, double>> ScrapeAsync(TestServer server)
    {
        using var response = await server.Client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (Match match in Sample().Matches(await response.Content.ReadAsStringAsync()))
        {
            values[match.Groups[1].Value] = double.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
        }

        return values;
    }

    [GeneratedRegex(@"^(fastingest_[^ ]+) ([0-9.eE+-]+)$", RegexOptions.Multiline)]
    private static partial Regex Sample();
}
