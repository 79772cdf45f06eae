using System.Net;
using System.Text.Json;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Reading;

public abstract class RunHistoryTests : IAsyncLifetime
{
    protected abstract Task<TestServer> StartServerAsync();

    private TestServer _server = null!;
    private Tenant _tenant = null!;

    public async Task InitializeAsync()
    {
        _server = await StartServerAsync();
        _tenant = await _server.CreateTenantAsync("history");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task IngestAsync(string runId, string status, long durationMs, string timestamp, string? branch = null)
    {
        var body = TestServer.Run(runId, status, durationMs, timestamp);
        if (branch is not null)
        {
            body = body.Replace("}", $",\"branch\":\"{branch}\"}}", StringComparison.Ordinal);
        }

        using var response = await _server.IngestAsync(_tenant.ProjectToken, body);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    private async Task<JsonElement> GetAsync(string query, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await _server.SendAsync(HttpMethod.Get, query, _tenant.ProjectToken);
        return expected == HttpStatusCode.OK ? await Json.ReadAsync(response, expected) : await Json.ReadProblemAsync(response, expected);
    }

    private static string[] RunIds(JsonElement page) => page.GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("run_id").GetString()!).ToArray();

    [Fact]
    public async Task EmptyProjectGivesAnEmptyPageWithoutCursor()
    {
        var page = await GetAsync("/v1/runs");
        Assert.Empty(RunIds(page));
        Assert.Equal(JsonValueKind.Null, page.GetProperty("next_cursor").ValueKind);
    }

    [Fact]
    public async Task PagesWalkNewestFirstWithoutGapsOrRepeatsEvenWhileNewRunsArrive()
    {
        for (var i = 0; i < 7; i++)
        {
            await IngestAsync($"walk-{i}", "passed", 10, $"2026-01-12T10:00:0{i}Z");
        }

        // Two runs with the same timestamp: the tie is broken by insertion order, never dropped.
        await IngestAsync("walk-tie", "passed", 10, "2026-01-12T10:00:03Z");

        var seen = new List<string>();
        var first = await GetAsync("/v1/runs?limit=3");
        seen.AddRange(RunIds(first));
        Assert.Equal(["walk-6", "walk-5", "walk-4"], RunIds(first));

        await IngestAsync("walk-newer", "passed", 10, "2026-01-12T11:00:00Z"); // must not shift the next page

        var cursor = first.GetProperty("next_cursor").GetString();
        while (cursor is not null)
        {
            var page = await GetAsync($"/v1/runs?limit=3&cursor={cursor}");
            seen.AddRange(RunIds(page));
            cursor = page.GetProperty("next_cursor").GetString();
        }

        Assert.Equal(["walk-6", "walk-5", "walk-4", "walk-tie", "walk-3", "walk-2", "walk-1", "walk-0"], seen);
    }

    [Fact]
    public async Task ExactlyOnePageHasNoNextCursor()
    {
        await IngestAsync("one-a", "passed", 1, "2026-01-12T10:00:00Z");
        await IngestAsync("one-b", "passed", 1, "2026-01-12T10:00:01Z");
        var page = await GetAsync("/v1/runs?limit=2");
        Assert.Equal(2, RunIds(page).Length);
        Assert.Equal(JsonValueKind.Null, page.GetProperty("next_cursor").ValueKind);
    }

    [Fact]
    public async Task FiltersByStatusBranchAndTime()
    {
        await IngestAsync("f-1", "passed", 1, "2026-02-01T10:00:00Z", "main");
        await IngestAsync("f-2", "failed", 1, "2026-02-02T10:00:00Z", "main");
        await IngestAsync("f-3", "failed", 1, "2026-02-03T10:00:00Z", "dev");
        await IngestAsync("f-4", "passed", 1, "2026-02-04T10:00:00Z");

        Assert.Equal(["f-3", "f-2"], RunIds(await GetAsync("/v1/runs?status=failed&since=2026-02-01&until=2026-02-05")));
        Assert.Equal(["f-2", "f-1"], RunIds(await GetAsync("/v1/runs?branch=main")));
        Assert.Equal(["f-2"], RunIds(await GetAsync("/v1/runs?branch=main&status=failed")));
        Assert.Equal(["f-3", "f-2"], RunIds(await GetAsync("/v1/runs?since=2026-02-02T00:00:00Z&until=2026-02-04T00:00:00Z")));
    }

    [Fact]
    public async Task CursorPastTheEndGivesAnEmptyPage()
    {
        await IngestAsync("end-a", "passed", 1, "2026-03-01T10:00:00Z");
        await IngestAsync("end-b", "passed", 1, "2026-03-01T10:00:01Z");
        var first = await GetAsync("/v1/runs?limit=1&since=2026-03-01&until=2026-03-02");
        var second = await GetAsync($"/v1/runs?limit=1&since=2026-03-01&until=2026-03-02&cursor={first.GetProperty("next_cursor").GetString()}");
        Assert.Equal(["end-a"], RunIds(second));
        Assert.Equal(JsonValueKind.Null, second.GetProperty("next_cursor").ValueKind);
    }

    [Fact]
    public async Task TamperedOrForeignCursorIs400()
    {
        await IngestAsync("t-a", "passed", 1, "2026-04-01T10:00:00Z");
        await IngestAsync("t-b", "passed", 1, "2026-04-01T10:00:01Z");
        var cursor = (await GetAsync("/v1/runs?limit=1")).GetProperty("next_cursor").GetString()!;
        var tampered = cursor[..5] + (cursor[5] == 'A' ? 'B' : 'A') + cursor[6..];

        Assert.Contains("cursor", Json.ErrorFields(await GetAsync($"/v1/runs?limit=1&cursor={tampered}", HttpStatusCode.BadRequest)));
        Assert.Contains("cursor", Json.ErrorFields(await GetAsync($"/v1/runs?limit=1&cursor={cursor[..^2]}", HttpStatusCode.BadRequest)));
        Assert.Contains("cursor", Json.ErrorFields(await GetAsync($"/v1/runs?limit=1&status=passed&cursor={cursor}", HttpStatusCode.BadRequest)));
        Assert.Contains("cursor", Json.ErrorFields(await GetAsync("/v1/runs?cursor=!!!", HttpStatusCode.BadRequest)));
    }

    [Theory]
    [InlineData("/v1/runs?limit=0", "limit")]
    [InlineData("/v1/runs?limit=1001", "limit")]
    [InlineData("/v1/runs?limit=ten", "limit")]
    [InlineData("/v1/runs?status=flaky", "status")]
    [InlineData("/v1/runs?since=yesterday", "since")]
    [InlineData("/v1/runs?since=2026-02-02&until=2026-02-01", "until")]
    [InlineData("/v1/runs?sort=asc", "sort")]
    [InlineData("/v1/stats?window=7", "window")]
    [InlineData("/v1/stats?window=0d", "window")]
    [InlineData("/v1/stats?window=7d&since=2026-01-01", "window")]
    public async Task BadQueryParametersAre400NamingTheField(string url, string field) =>
        Assert.Contains(field, Json.ErrorFields(await GetAsync(url, HttpStatusCode.BadRequest)));

    [Fact]
    public async Task StatsMatchAKnownDataSet()
    {
        // 10 runs on 2026-05-01 (durations 100..1000 ms, 3 failed) and 2 on 2026-05-03 on branch dev.
        for (var i = 1; i <= 10; i++)
        {
            await IngestAsync($"s-{i}", i <= 3 ? "failed" : "passed", i * 100, $"2026-05-01T{i:00}:00:00Z", "main");
        }

        await IngestAsync("s-dev-1", "passed", 5000, "2026-05-03T12:00:00Z", "dev");
        await IngestAsync("s-dev-2", "failed", 7000, "2026-05-03T13:00:00Z", "dev");

        var all = await GetAsync("/v1/stats?since=2026-05-01&until=2026-05-04");
        Assert.Equal(12, all.GetProperty("total").GetInt64());
        Assert.Equal(8, all.GetProperty("passed").GetInt64());
        Assert.Equal(4, all.GetProperty("failed").GetInt64());
        Assert.Equal(0.6667, all.GetProperty("pass_rate").GetDouble());
        var durations = all.GetProperty("duration_ms");
        Assert.Equal(7000, durations.GetProperty("max").GetInt64());
        // Nearest rank: p50 of 12 values is the 6th smallest (600 ms); histogram edges are at most 5% above.
        Assert.InRange(durations.GetProperty("p50").GetInt64(), 600, 630);
        Assert.Equal(7000, durations.GetProperty("p99").GetInt64());

        var daily = all.GetProperty("daily").EnumerateArray().ToList();
        Assert.Equal(["2026-05-01", "2026-05-02", "2026-05-03"], daily.Select(d => d.GetProperty("date").GetString()));
        Assert.Equal([10L, 0L, 2L], daily.Select(d => d.GetProperty("count").GetInt64()));
        Assert.Equal(0.7, daily[0].GetProperty("pass_rate").GetDouble());
        Assert.Equal(JsonValueKind.Null, daily[1].GetProperty("pass_rate").ValueKind);
        Assert.InRange(daily[0].GetProperty("p95_ms").GetInt64(), 1000, 1000); // capped at the day's exact max

        var dev = await GetAsync("/v1/stats?since=2026-05-01&until=2026-05-04&branch=dev");
        Assert.Equal(2, dev.GetProperty("total").GetInt64());
        Assert.Equal(0.5, dev.GetProperty("pass_rate").GetDouble());
    }

    [Fact]
    public async Task DuplicatesAndConflictsDoNotCountTwiceInStats()
    {
        await IngestAsync("dup-stat", "passed", 100, "2026-06-01T10:00:00Z");
        (await _server.IngestAsync(_tenant.ProjectToken, TestServer.Run("dup-stat", "passed", 100, "2026-06-01T10:00:00Z"))).Dispose();
        (await _server.IngestAsync(_tenant.ProjectToken, TestServer.Run("dup-stat", "failed", 100, "2026-06-01T10:00:00Z"))).Dispose();
        var stats = await GetAsync("/v1/stats?since=2026-06-01&until=2026-06-02");
        Assert.Equal(1, stats.GetProperty("total").GetInt64());
        Assert.Equal(1, stats.GetProperty("passed").GetInt64());
    }

    [Fact]
    public async Task OrgTokensReadByProjectIdAndForeignProjectsAre404()
    {
        await IngestAsync("org-read", "passed", 1, "2026-07-01T10:00:00Z");
        using var own = await _server.SendAsync(HttpMethod.Get, $"/v1/runs?project_id={_tenant.ProjectId}", _tenant.OrgToken);
        Assert.Contains("org-read", RunIds(await Json.ReadAsync(own, HttpStatusCode.OK)));

        var other = await _server.CreateTenantAsync("history-other");
        using var foreign = await _server.SendAsync(HttpMethod.Get, $"/v1/stats?project_id={_tenant.ProjectId}", other.OrgToken);
        await Json.ReadProblemAsync(foreign, HttpStatusCode.NotFound);
        using var missing = await _server.SendAsync(HttpMethod.Get, "/v1/runs", other.OrgToken);
        Assert.Contains("project_id", Json.ErrorFields(await Json.ReadProblemAsync(missing, HttpStatusCode.BadRequest)));
    }
}

public sealed class SqliteRunHistoryTests : RunHistoryTests
{
    protected override Task<TestServer> StartServerAsync() => TestServer.StartAsync();
}

public sealed class PostgresRunHistoryTests : RunHistoryTests
{
    protected override async Task<TestServer> StartServerAsync() => await TestServer.StartAsync(postgres: await PostgresCluster.CreateDatabaseAsync("history"));
}
