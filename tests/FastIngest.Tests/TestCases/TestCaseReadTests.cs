using System.Net;
using System.Text.Json;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.TestCases;

/// <summary>Test cases posted in JSON, read back per run, and mined for flaky and slow tests.</summary>
public abstract class TestCaseReadTests : IAsyncLifetime
{
    protected abstract Task<TestServer> StartServerAsync();

    private TestServer _server = null!;
    private Tenant _tenant = null!;

    public async Task InitializeAsync()
    {
        _server = await StartServerAsync();
        _tenant = await _server.CreateTenantAsync("tests-read");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static string Body(string runId, DateTimeOffset timestamp, string? commit, params object[] tests) =>
        JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["run_id"] = runId,
            ["status"] = "passed",
            ["duration_ms"] = 1000,
            ["timestamp"] = timestamp.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture),
            ["commit_sha"] = commit,
            ["tests"] = tests,
        });

    private static object Test(string name, string status, long durationMs = 10, int? attempt = null) =>
        attempt is null
            ? new { suite = "Suite", name, status, duration_ms = durationMs }
            : new { suite = "Suite", name, status, duration_ms = durationMs, attempt };

    private async Task<JsonElement> IngestAsync(string token, string body, HttpStatusCode expected = HttpStatusCode.Created)
    {
        using var response = await _server.IngestAsync(token, body);
        return await Json.ReadAsync(response, expected);
    }

    private async Task<JsonElement> GetAsync(string path, HttpStatusCode expected = HttpStatusCode.OK, string? token = null)
    {
        using var response = await _server.SendAsync(HttpMethod.Get, path, token ?? _tenant.ProjectToken);
        return expected == HttpStatusCode.OK ? await Json.ReadAsync(response, expected) : await Json.ReadProblemAsync(response, expected);
    }

    [Fact]
    public async Task JsonTestCasesDeriveTheRunCountsFromEachTestsLastAttempt()
    {
        var accepted = await IngestAsync(_tenant.ProjectToken, Body("json-1", DateTimeOffset.UtcNow, null,
            Test("a", "passed"), Test("b", "failed", attempt: 1), Test("b", "passed", attempt: 2), Test("c", "skipped"), Test("d", "error")));

        Assert.Equal(5, accepted.GetProperty("test_cases").GetInt32());
        var counts = (await GetAsync("/v1/runs/json-1")).GetProperty("counts");
        Assert.Equal(4, counts.GetProperty("total").GetInt32());
        Assert.Equal(2, counts.GetProperty("passed").GetInt32());
        Assert.Equal(1, counts.GetProperty("failed").GetInt32());
        Assert.Equal(1, counts.GetProperty("skipped").GetInt32());
    }

    [Fact]
    public async Task CountsThatContradictTheTestCasesAreRefused()
    {
        var body = Body("json-2", DateTimeOffset.UtcNow, null, Test("a", "passed"))
            .Replace("\"tests\"", "\"counts\":{\"total\":2,\"passed\":2,\"failed\":0,\"skipped\":0},\"tests\"", StringComparison.Ordinal);

        var problem = await IngestAsync(_tenant.ProjectToken, body, HttpStatusCode.BadRequest);

        Assert.Equal(["counts"], Json.ErrorFields(problem));
    }

    [Fact]
    public async Task EveryBadTestCaseIsNamedByItsPosition()
    {
        var body = Body("json-3", DateTimeOffset.UtcNow, null,
            Test("ok", "passed"),
            new { name = "no-status", duration_ms = 1 },
            new { name = "x", status = "green", duration_ms = 1 },
            new { name = "y", status = "passed", duration_ms = -5 },
            new { name = "z", status = "passed", duration_ms = 1, colour = "red" },
            Test("twice", "passed", attempt: 1), Test("twice", "failed", attempt: 1));

        var problem = await IngestAsync(_tenant.ProjectToken, body, HttpStatusCode.BadRequest);

        Assert.Equal(["tests[1].status", "tests[2].status", "tests[3].duration_ms", "tests[4].colour", "tests[6]"], Json.ErrorFields(problem));
        using var missing = await _server.SendAsync(HttpMethod.Get, "/v1/runs/json-3", _tenant.ProjectToken);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task RetryWithTheSameCasesIsADuplicateAndWithOtherCasesAConflict()
    {
        var now = DateTimeOffset.UtcNow;
        await IngestAsync(_tenant.ProjectToken, Body("json-4", now, null, Test("a", "passed"), Test("b", "failed")));

        var again = await IngestAsync(_tenant.ProjectToken, Body("json-4", now, null, Test("a", "passed"), Test("b", "failed")), HttpStatusCode.OK);
        Assert.True(again.GetProperty("duplicate").GetBoolean());
        await IngestAsync(_tenant.ProjectToken, Body("json-4", now, null, Test("a", "passed"), Test("b", "passed")), HttpStatusCode.Conflict);

        var tests = (await GetAsync("/v1/runs/json-4/tests")).GetProperty("tests");
        Assert.Equal(2, tests.GetArrayLength());
        Assert.Equal("failed", tests[1].GetProperty("status").GetString());
    }

    [Fact]
    public async Task RunTestsArePagedInUploadOrderAndFilteredByStatus()
    {
        await IngestAsync(_tenant.ProjectToken, Body("paged/run-5", DateTimeOffset.UtcNow, null,
            Test("t0", "passed"), Test("t1", "failed"), Test("t2", "passed"), Test("t3", "failed"), Test("t4", "failed")));

        var names = new List<string>();
        string? cursor = null;
        do
        {
            var page = await GetAsync("/v1/runs/paged/run-5/tests?limit=2" + (cursor is null ? "" : "&cursor=" + cursor));
            names.AddRange(page.GetProperty("tests").EnumerateArray().Select(t => t.GetProperty("name").GetString()!));
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);

        Assert.Equal(["t0", "t1", "t2", "t3", "t4"], names);
        var failed = await GetAsync("/v1/runs/paged/run-5/tests?status=failed&limit=2");
        Assert.Equal(["t1", "t3"], failed.GetProperty("tests").EnumerateArray().Select(t => t.GetProperty("name").GetString()));
        var foreignCursor = failed.GetProperty("next_cursor").GetString();
        var problem = await GetAsync($"/v1/runs/paged/run-5/tests?cursor={foreignCursor}", HttpStatusCode.BadRequest);
        Assert.Equal(["cursor"], Json.ErrorFields(problem));
    }

    [Fact]
    public async Task AnotherTenantsRunTestsAnswer404()
    {
        await IngestAsync(_tenant.ProjectToken, Body("private-run", DateTimeOffset.UtcNow, null, Test("secret-test", "passed")));
        var other = await _server.CreateTenantAsync("tests-other", scope: "read");

        var problem = await GetAsync("/v1/runs/private-run/tests", HttpStatusCode.NotFound, other.ProjectToken);
        Assert.DoesNotContain("secret-test", problem.ToString(), StringComparison.Ordinal);
        await GetAsync($"/v1/runs/private-run/tests?project_id={_tenant.ProjectId}", HttpStatusCode.NotFound, other.OrgToken);
        await GetAsync($"/v1/runs/private-run/tests?project_id={_tenant.ProjectId}", HttpStatusCode.OK, _tenant.OrgToken);
    }

    [Fact]
    public async Task FlakyTestsAreThoseThatPassedAndFailedOnOneCommitOrWithinOneRun()
    {
        var t0 = DateTimeOffset.UtcNow.AddDays(-2);
        var token = _tenant.ProjectToken;
        await IngestAsync(token, Body("f1", t0, "aaaaaaa", Test("X", "passed"), Test("Y", "passed"), Test("Z", "failed"), Test("W", "passed")));
        await IngestAsync(token, Body("f2", t0.AddHours(1), "aaaaaaa", Test("X", "failed"), Test("Y", "passed"), Test("Z", "failed"), Test("W", "passed")));
        await IngestAsync(token, Body("f3", t0.AddHours(2), "bbbbbbb", Test("X", "passed"), Test("Z", "passed"), Test("W", "skipped")));
        await IngestAsync(token, Body("f4", t0.AddHours(3), null, Test("Y", "failed"), Test("Y", "passed"), Test("X", "passed")));
        // Z failing then passing in two commit-less runs is a fix or a regression, not evidence of flakiness.
        await IngestAsync(token, Body("f5", t0.AddHours(4), null, Test("Z", "error")));
        await IngestAsync(token, Body("f6", t0.AddHours(5), null, Test("Z", "passed")));
        // V flaked a month ago: outside a 7-day window, inside a 60-day one.
        var old = t0.AddDays(-30);
        await IngestAsync(token, Body("f7", old, "ccccccc", Test("V", "failed")));
        await IngestAsync(token, Body("f8", old.AddHours(1), "ccccccc", Test("V", "passed")));

        var flaky = (await GetAsync("/v1/tests/flaky?window=7d")).GetProperty("tests");

        Assert.Equal(["Y", "X"], flaky.EnumerateArray().Select(t => t.GetProperty("name").GetString()));
        // flips counts flakes: a retry that turned a failure into a pass, or a commit that both passed and failed.
        // Executions are runs (a retried test counts once, by its last attempt).
        var y = flaky[0];
        Assert.Equal(1, y.GetProperty("flips").GetInt32());
        Assert.Equal(1, y.GetProperty("retry_passes").GetInt32());
        Assert.Equal(0, y.GetProperty("flaky_commits").GetInt32());
        Assert.Equal(3, y.GetProperty("executions").GetInt32());
        Assert.Equal(0, y.GetProperty("failures").GetInt32());
        var x = flaky[1];
        Assert.Equal(1, x.GetProperty("flips").GetInt32());
        Assert.Equal(1, x.GetProperty("flaky_commits").GetInt32());
        Assert.Equal(AsJsonTime(t0.AddHours(1)), x.GetProperty("last_flaky_at").GetString());
        Assert.Equal(AsJsonTime(t0.AddHours(3)), x.GetProperty("last_seen_at").GetString());

        var wide = (await GetAsync("/v1/tests/flaky?window=60d")).GetProperty("tests");
        Assert.Contains("V", wide.EnumerateArray().Select(t => t.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task SlowestTestsAreRankedByNearestRankP95()
    {
        var tenant = await _server.CreateTenantAsync("tests-slow");
        var t0 = DateTimeOffset.UtcNow.AddHours(-20);
        for (var i = 1; i <= 21; i++)
        {
            await IngestAsync(tenant.ProjectToken, Body($"s{i}", t0.AddMinutes(i), null,
                Test("slow", "passed", i * 10), Test("fast", "passed", 5), Test("skipped-long", "skipped", 99_999)));
        }

        var slowest = (await GetAsync("/v1/tests/slowest?window=24h", token: tenant.ProjectToken)).GetProperty("tests");

        Assert.Equal(["slow", "fast"], slowest.EnumerateArray().Select(t => t.GetProperty("name").GetString()));
        // ceil(0.95 * 21) = the 20th of 21 sorted samples, 200 ms, reported as its histogram bucket's upper edge (5% wide)
        var p95 = slowest[0].GetProperty("p95_ms").GetInt64();
        Assert.True(p95 is >= 200 and <= 210, $"p95 {p95}, expected 200 to 210");
        Assert.Equal(210, slowest[0].GetProperty("max_ms").GetInt64());
        Assert.Equal(110, slowest[0].GetProperty("mean_ms").GetDouble());
        Assert.Equal(21, slowest[0].GetProperty("executions").GetInt32());
        Assert.Equal(5, slowest[1].GetProperty("p95_ms").GetInt64());
    }

    [Theory]
    [InlineData("window=0d")]
    [InlineData("window=366d")]
    [InlineData("window=7w")]
    [InlineData("limit=0")]
    [InlineData("colour=red")]
    public async Task BadWindowQueriesGet400(string query)
    {
        await GetAsync("/v1/tests/flaky?" + query, HttpStatusCode.BadRequest);
        await GetAsync("/v1/tests/slowest?" + query, HttpStatusCode.BadRequest);
    }

    private static string AsJsonTime(DateTimeOffset value) =>
        DateTimeOffset.FromUnixTimeSeconds(value.ToUnixTimeSeconds()).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task HistoryScansOfOneTenantRunOneAtATime()
    {
        var tenant = await _server.CreateTenantAsync("heavy-reads");
        var slots = _server.Service<FastIngest.TestCases.HeavyReadSlots>();
        var orgKey = (await _server.Service<FastIngest.Storage.ITenantStore>().FindOrgAsync(tenant.OrgId))!.Key;
        var held = await slots.TryEnterAsync(orgKey, CancellationToken.None);
        Assert.NotNull(held);

        var waiting = _server.SendAsync(HttpMethod.Get, "/v1/tests/flaky", tenant.ProjectToken);
        for (var i = 0; i < 500 && slots.Waiting == 0; i++)
        {
            await Task.Delay(10);
        }

        Assert.True(slots.Waiting == 1, $"the second scan is not waiting for the slot ({slots.Waiting} waiting)");
        Assert.False(waiting.IsCompleted, "a second scan of the same tenant ran while the first held its slot");

        held.Dispose();
        using var response = await waiting;
        await Json.ReadAsync(response, System.Net.HttpStatusCode.OK);
    }
}

public sealed class SqliteTestCaseReadTests : TestCaseReadTests
{
    protected override Task<TestServer> StartServerAsync() => TestServer.StartAsync();
}

public sealed class PostgresTestCaseReadTests : TestCaseReadTests
{
    protected override async Task<TestServer> StartServerAsync() => await TestServer.StartAsync(postgres: await PostgresCluster.CreateDatabaseAsync("testcases"));
}
