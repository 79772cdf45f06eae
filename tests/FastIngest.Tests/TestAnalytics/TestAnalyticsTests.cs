using System.Globalization;
using System.Net;
using System.Text.Json;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.TestAnalytics;

/// <summary>
/// Tests as first-class objects over crafted histories: each state's rule, infrastructure failures, resets,
/// renames, failure groups, one test's history, and the tenancy of every route. Every backend answers alike.
/// </summary>
public abstract class TestAnalyticsTests : IAsyncLifetime
{
    private static readonly DateTimeOffset s_now = DateTimeOffset.UtcNow;
    private TestServer _server = null!;

    protected abstract Task<TestServer> StartServerAsync();

    public async Task InitializeAsync() => _server = await StartServerAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task APassAndAFailureOnOneCommitMakeATestFlakyButAFixOnTheNextCommitDoesNot()
    {
        var tenant = await _server.CreateTenantAsync("states-commit");
        await PostAsync(tenant, "c1", -3, "aaaaaaa", Case("wobbly", "passed"), Case("fixed-by-commit", "failed"));
        await PostAsync(tenant, "c2", -3, "aaaaaaa", Case("wobbly", "failed"), Case("fixed-by-commit", "failed"));
        await PostAsync(tenant, "c3", -2, "bbbbbbb", Case("wobbly", "passed"), Case("fixed-by-commit", "passed"));

        var flaky = await TestsAsync(tenant, "state=flaky");

        var wobbly = Assert.Single(flaky.EnumerateArray());
        Assert.Equal("wobbly", wobbly.GetProperty("name").GetString());
        Assert.Equal((1, 1, 3, 1), (Int(wobbly, "flakes"), Int(wobbly, "flaky_commits"), Int(wobbly, "executions"), Int(wobbly, "failures")));
        Assert.Contains("flaky", States(wobbly));
    }

    [Fact]
    public async Task AReRunShardThatPassesMakesTheCommitFlakyHoweverManyShardsTheCommitHas()
    {
        var tenant = await _server.CreateTenantAsync("states-shards");
        for (var shard = 0; shard < 40; shard++)
        {
            await PostAsync(tenant, $"shard-{shard}", -2, "5656565", Case($"shard{shard}_test", shard == 3 ? "failed" : "passed"));
        }

        await PostAsync(tenant, "shard-3-rerun", -2, "5656565", Case("shard3_test", "passed"));

        var flaky = await TestsAsync(tenant, "state=flaky");

        Assert.Equal(["shard3_test"], Names(flaky));
        Assert.Equal(1, Int(flaky[0], "flaky_commits"));
    }

    [Fact]
    public async Task ACommitFlakyForATestCountsOnceHoweverOftenItFlipsAgain()
    {
        var tenant = await _server.CreateTenantAsync("states-nightly");
        var outcomes = new[] { "passed", "failed" }.Concat(Enumerable.Repeat("passed", 21)).Append("failed").ToArray();
        for (var night = 0; night < outcomes.Length; night++)
        {
            await PostAsync(tenant, $"nightly-{night}", -3, "7878787", Case("nightly_test", outcomes[night]));
        }

        var test = Assert.Single((await TestsAsync(tenant, "state=flaky")).EnumerateArray());
        Assert.Equal(1, Int(test, "flaky_commits"));
    }

    [Fact]
    public async Task AFlakyTestThatIsSkippedSinceIsNotFixed()
    {
        var tenant = await _server.CreateTenantAsync("states-quarantined");
        await PostAsync(tenant, "q1", -12, "9090909", Case("quarantined", "passed"), Case("healed", "passed"));
        await PostAsync(tenant, "q2", -12, "9090909", Case("quarantined", "failed"), Case("healed", "failed"));
        await PostAsync(tenant, "q3", -2, "a0a0a0a", Case("quarantined", "skipped"), Case("healed", "passed"));

        Assert.Equal(["healed"], Names(await TestsAsync(tenant, "state=fixed&window=30d")));
    }

    [Fact]
    public async Task AFailureThatPassesOnRetryInsideOneRunIsFlaky()
    {
        var tenant = await _server.CreateTenantAsync("states-retry");
        await PostAsync(tenant, "r1", -1, null, Case("retried", "failed", attempt: 1), Case("retried", "passed", attempt: 2), Case("steady", "passed"));

        var flaky = await TestsAsync(tenant, "state=flaky");

        var retried = Assert.Single(flaky.EnumerateArray());
        Assert.Equal("retried", retried.GetProperty("name").GetString());
        Assert.Equal((1, 1, 0), (Int(retried, "retry_passes"), Int(retried, "executions"), Int(retried, "failures")));
    }

    [Fact]
    public async Task ATestFailingEveryExecutionIsBrokenOnlyFromThreeExecutionsOn()
    {
        var tenant = await _server.CreateTenantAsync("states-broken");
        await PostAsync(tenant, "b1", -3, "1111111", Case("dead", "failed"), Case("dying", "failed"), Case("fine", "passed"));
        await PostAsync(tenant, "b2", -2, "2222222", Case("dead", "error"), Case("dying", "failed"), Case("fine", "passed"));
        await PostAsync(tenant, "b3", -1, "3333333", Case("dead", "failed"), Case("fine", "passed"));

        var broken = await TestsAsync(tenant, "state=broken");

        Assert.Equal(["dead"], Names(broken)); // 'dying' failed twice: too few executions to call it broken
    }

    [Fact]
    public async Task ATestIsNewWhenFirstSeenInTheWindowAndARenamedTestIsANewTest()
    {
        var tenant = await _server.CreateTenantAsync("states-new");
        await PostAsync(tenant, "n1", -20, null, Case("old_name", "passed"), Case("veteran", "passed"));
        await PostAsync(tenant, "n2", -1, null, Case("new_name", "passed"), Case("veteran", "passed"));

        var fresh = await TestsAsync(tenant, "state=new&window=7d");
        var all = await TestsAsync(tenant, "window=30d");

        Assert.Equal(["new_name"], Names(fresh));
        Assert.Equal(3, all.GetArrayLength());
        var ids = all.EnumerateArray().Select(t => t.GetProperty("test_id").GetString()).ToList();
        Assert.Equal(3, ids.Distinct().Count()); // the renamed test has an id of its own
    }

    [Fact]
    public async Task AFlakyTestQuietForAWeekAndRunSinceIsFixed()
    {
        var tenant = await _server.CreateTenantAsync("states-fixed");
        await PostAsync(tenant, "f1", -10, "ccccccc", Case("healed", "passed"), Case("still", "passed"));
        await PostAsync(tenant, "f2", -10, "ccccccc", Case("healed", "failed"), Case("still", "failed"));
        await PostAsync(tenant, "f3", -2, "ddddddd", Case("healed", "passed"), Case("still", "passed"));
        await PostAsync(tenant, "f4", -1, "ddddddd", Case("healed", "passed"), Case("still", "failed"));

        var month = await TestsAsync(tenant, "state=fixed&window=30d");
        var week = await TestsAsync(tenant, "state=flaky&window=7d");

        Assert.Equal(["healed"], Names(month));
        Assert.Equal(["flaky", "new", "fixed"], States(month[0])); // flaky over the month, new in it, quiet for a week
        Assert.Equal(["still"], Names(week));
    }

    [Fact]
    public async Task ARunWhereMostTestsFailedIsLeftOutOfFlakyDetectionAndSaysSo()
    {
        var tenant = await _server.CreateTenantAsync("states-infra");
        var names = Enumerable.Range(0, 12).Select(i => $"t{i}").ToArray();
        await PostAsync(tenant, "i1", -2, "eeeeeee", names.Select(n => Case(n, "passed")).ToArray());
        // The database was down: 11 of 12 failed on the same commit. Not 11 flaky tests.
        await PostAsync(tenant, "i2", -2, "eeeeeee", names.Select((n, i) => Case(n, i == 0 ? "passed" : "failed")).ToArray());
        await PostAsync(tenant, "i3", -1, "fffffff", names.Select(n => Case(n, "passed")).ToArray());

        var flaky = await TestsAsync(tenant, "state=flaky");
        var all = await TestsAsync(tenant, "");

        Assert.Equal(0, flaky.GetArrayLength());
        var t1 = all.EnumerateArray().Single(t => t.GetProperty("name").GetString() == "t1");
        Assert.Equal((2, 0, 1), (Int(t1, "executions"), Int(t1, "failures"), Int(t1, "infra_executions")));
    }

    [Fact]
    public async Task AResetEndsTheFlakyStateRecordsWhoAndWhenAndANewFlakeMakesItFlakyAgain()
    {
        var tenant = await _server.CreateTenantAsync("states-reset");
        await PostAsync(tenant, "x1", -2, "1212121", Case("shaky", "passed"));
        await PostAsync(tenant, "x2", -2, "1212121", Case("shaky", "failed"));
        var id = Assert.Single((await TestsAsync(tenant, "state=flaky")).EnumerateArray()).GetProperty("test_id").GetString()!;

        using (var refused = await _server.SendAsync(HttpMethod.Post, $"/v1/tests/{id}/reset-flaky", tenant.ProjectToken))
        {
            await Json.ReadProblemAsync(refused, HttpStatusCode.Forbidden); // CI tokens cannot silence a flaky test
        }

        JsonElement reset;
        using (var response = await _server.SendAsync(HttpMethod.Post, $"/v1/tests/{id}/reset-flaky?project_id={tenant.ProjectId}", tenant.OrgToken))
        {
            reset = await Json.ReadAsync(response, HttpStatusCode.OK);
        }

        Assert.Equal(0, (await TestsAsync(tenant, "state=flaky")).GetArrayLength());
        var detail = await GetAsync(tenant, $"/v1/tests/{id}");
        Assert.Equal(reset.GetProperty("flaky_reset_at").GetString(), detail.GetProperty("flaky_reset_at").GetString());
        Assert.False(string.IsNullOrEmpty(detail.GetProperty("flaky_reset_by").GetString()), $"{detail}");

        // It flakes again after the fix: flaky again, counting only the new flake.
        await PostAsync(tenant, "x3", 0, "3434343", Case("shaky", "passed"), secondsAfterNow: 2);
        await PostAsync(tenant, "x4", 0, "3434343", Case("shaky", "failed"), secondsAfterNow: 3);
        var again = Assert.Single((await TestsAsync(tenant, "state=flaky")).EnumerateArray());
        Assert.Equal(1, Int(again, "flakes"));
    }

    [Fact]
    public async Task FailuresThatDifferOnlyInNumbersAndIdsAreOneGroupAndOtherErrorsAreNot()
    {
        var tenant = await _server.CreateTenantAsync("failure-groups");
        await PostAsync(tenant, "g1", -1, null,
            Case("db_a", "failed", message: "connection refused (127.0.0.1:5432) after 3012 ms"),
            Case("db_b", "failed", message: "connection refused (10.0.0.7:5433) after 17 ms"),
            Case("db_c", "error", message: "connection refused (127.0.0.1:5432) after 9 ms"),
            Case("math", "failed", message: "expected 4 but was 5"),
            Case("npe", "error", message: "NullPointerException at Foo.bar(Foo.java:12)"));

        var groups = (await GetAsync(tenant, "/v1/failures?window=7d")).GetProperty("groups");

        Assert.Equal(3, groups.GetArrayLength());
        var refused = groups[0];
        Assert.Equal(3, Int(refused, "occurrences"));
        Assert.Equal(3, Int(refused, "tests_affected"));
        Assert.Contains("connection refused", refused.GetProperty("pattern").GetString(), StringComparison.Ordinal);
        Assert.Equal(["db_a", "db_b", "db_c"], refused.GetProperty("tests").EnumerateArray().Select(t => t.GetProperty("name").GetString()!).Order().ToArray());
    }

    [Fact]
    public async Task OneTestsHistoryPagesNewestFirstAcrossDaysAndItsCursorIsBoundToIt()
    {
        var tenant = await _server.CreateTenantAsync("history");
        for (var i = 0; i < 5; i++)
        {
            await PostAsync(tenant, $"h{i}", i - 5, null, Case("tracked", i % 2 == 0 ? "passed" : "failed", message: i % 2 == 0 ? null : $"boom {i}"),
                Case("other", "passed"));
        }

        var id = (await TestsAsync(tenant, "")).EnumerateArray().Single(t => t.GetProperty("name").GetString() == "tracked").GetProperty("test_id").GetString()!;
        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var page = await GetAsync(tenant, $"/v1/tests/{id}/executions?limit=2" + (cursor is null ? "" : $"&cursor={cursor}"));
            seen.AddRange(page.GetProperty("executions").EnumerateArray().Select(e => e.GetProperty("run_id").GetString()!));
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null && seen.Count < 10);

        Assert.Equal(["h4", "h3", "h2", "h1", "h0"], seen);
        var first = (await GetAsync(tenant, $"/v1/tests/{id}/executions?limit=5")).GetProperty("executions");
        Assert.Equal("boom 3", first[1].GetProperty("failure_message").GetString());

        var otherId = (await TestsAsync(tenant, "")).EnumerateArray().Single(t => t.GetProperty("name").GetString() == "other").GetProperty("test_id").GetString()!;
        var page1 = await GetAsync(tenant, $"/v1/tests/{id}/executions?limit=2");
        using var misused = await _server.SendAsync(HttpMethod.Get,
            $"/v1/tests/{otherId}/executions?cursor={page1.GetProperty("next_cursor").GetString()}", tenant.ProjectToken);
        await Json.ReadProblemAsync(misused, HttpStatusCode.BadRequest);

        var detail = await GetAsync(tenant, $"/v1/tests/{id}?window=30d");
        Assert.Equal(5, detail.GetProperty("days").GetArrayLength());
        Assert.Equal((5, 2), (Int(detail, "executions"), Int(detail, "failures")));
    }

    [Fact]
    public async Task ATestsHistoryListsOnlyTheRunsItRanInAmongManyOthersOfTheSameDay()
    {
        var tenant = await _server.CreateTenantAsync("history-sparse");
        for (var i = 0; i < 30; i++)
        {
            await PostAsync(tenant, $"busy-{i}", -1, null, i is 3 or 17 ? Case("rare", i == 3 ? "failed" : "passed") : Case("common", "passed"));
        }

        var id = (await TestsAsync(tenant, "")).EnumerateArray().Single(t => t.GetProperty("name").GetString() == "rare").GetProperty("test_id").GetString()!;
        var executions = (await GetAsync(tenant, $"/v1/tests/{id}/executions?limit=1")).GetProperty("executions");
        var page = await GetAsync(tenant, $"/v1/tests/{id}/executions?limit=1");
        var rest = await GetAsync(tenant, $"/v1/tests/{id}/executions?limit=10&cursor={page.GetProperty("next_cursor").GetString()}");

        Assert.Equal("busy-17", executions[0].GetProperty("run_id").GetString()); // stored last, same day: first
        Assert.Equal(["busy-3"], rest.GetProperty("executions").EnumerateArray().Select(e => e.GetProperty("run_id").GetString()!));
        Assert.Equal(JsonValueKind.Null, rest.GetProperty("next_cursor").ValueKind);
    }

    [Fact]
    public async Task AnotherTenantsTestIsA404OnEveryRouteAndNamesNothing()
    {
        var owner = await _server.CreateTenantAsync("tests-owner");
        var stranger = await _server.CreateTenantAsync("tests-stranger");
        await PostAsync(owner, "o1", -1, "9999999", Case("secret-test", "passed"));
        await PostAsync(owner, "o2", -1, "9999999", Case("secret-test", "failed", message: "secret message"));
        var id = Assert.Single((await TestsAsync(owner, "")).EnumerateArray()).GetProperty("test_id").GetString()!;

        foreach (var (method, path, token) in new[]
        {
            (HttpMethod.Get, $"/v1/tests/{id}", stranger.ProjectToken),
            (HttpMethod.Get, $"/v1/tests/{id}/executions", stranger.ProjectToken),
            (HttpMethod.Get, $"/v1/tests/{id}?project_id={stranger.ProjectId}", stranger.OrgToken),
            (HttpMethod.Post, $"/v1/tests/{id}/reset-flaky?project_id={stranger.ProjectId}", stranger.OrgToken),
            (HttpMethod.Get, $"/v1/tests?project_id={owner.ProjectId}", stranger.OrgToken),
            (HttpMethod.Get, $"/v1/failures?project_id={owner.ProjectId}", stranger.OrgToken),
            (HttpMethod.Get, $"/v1/tests/{id}?project_id={owner.ProjectId}", stranger.ProjectToken),
        })
        {
            using var response = await _server.SendAsync(method, path, token);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path}: {(int)response.StatusCode} {body}");
            Assert.DoesNotContain("secret", body, StringComparison.Ordinal);
        }

        Assert.Equal(0, (await TestsAsync(stranger, "")).GetArrayLength());
        Assert.Equal(0, (await GetAsync(stranger, "/v1/failures")).GetProperty("groups").GetArrayLength());
    }

    [Fact]
    public async Task APurgeTakesTheMessagesTestsAndGroupsOnlyPurgedRunsUsedAndTheWriterStoresThemAfreshLater()
    {
        var tenant = await _server.CreateTenantAsync("purge-orphans");
        await PostAsync(tenant, "old", -100, null, Case("gone_test", "failed", message: "old secret message"), Case("kept_test", "passed"));
        await PostAsync(tenant, "new", -1, null, Case("kept_test", "failed", message: "kept message"));
        Assert.Equal(2, (await TestsAsync(tenant, "window=365d")).GetArrayLength()); // folded

        var projectKey = (await _server.Service<FastIngest.Storage.ITenantStore>().FindProjectAsync(tenant.ProjectId))!.Key;
        await _server.Service<FastIngest.Destructive.RunPurger>().PurgeAsync(projectKey, s_now.AddDays(-50).ToUnixTimeMilliseconds());

        Assert.Equal(["kept message"], Strings($"SELECT message FROM failure_messages WHERE project_id = {projectKey}"));
        Assert.Equal(["kept_test"], Strings($"SELECT name FROM tests WHERE project_id = {projectKey}"));
        var groups = (await GetAsync(tenant, "/v1/failures?window=365d")).GetProperty("groups");
        Assert.Equal(["kept message"], groups.EnumerateArray().Select(g => g.GetProperty("example").GetString()!));

        // The same message and test again: stored afresh, not under the ids the purge removed.
        await PostAsync(tenant, "again", -1, null, Case("gone_test", "failed", message: "old secret message"));
        var tests = (await GetAsync(tenant, "/v1/runs/again/tests")).GetProperty("tests");
        Assert.True(tests.GetArrayLength() == 1, $"the run's tests: {tests}");
        Assert.Equal(("gone_test", "old secret message"), (tests[0].GetProperty("name").GetString(), tests[0].GetProperty("failure_message").GetString()));
    }

    private List<string> Strings(string sql) => _server.QueryStrings(sql);

    [Theory]
    [InlineData("/v1/tests?state=sticky")]
    [InlineData("/v1/tests?window=0d")]
    [InlineData("/v1/tests?cursor=nonsense")]
    [InlineData("/v1/tests?limit=1001")]
    [InlineData("/v1/failures?window=400d")]
    [InlineData("/v1/failures?branch=main")]
    public async Task BadTestQueriesGet400WithTheField(string path)
    {
        var tenant = await _server.CreateTenantAsync("tests-bad-" + Math.Abs(path.GetHashCode(StringComparison.Ordinal)));
        using var response = await _server.SendAsync(HttpMethod.Get, path, tenant.ProjectToken);
        var problem = await Json.ReadProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.True(problem.TryGetProperty("errors", out _), $"{problem}");
    }

    private async Task PostAsync(Tenant tenant, string runId, int days, string? commit, params object[] cases) =>
        await PostAsync(tenant, runId, days, commit, cases, 0);

    private async Task PostAsync(Tenant tenant, string runId, int days, string? commit, object @case, int secondsAfterNow) =>
        await PostAsync(tenant, runId, days, commit, [@case], secondsAfterNow);

    private async Task PostAsync(Tenant tenant, string runId, int days, string? commit, object[] cases, int secondsAfterNow)
    {
        var timestamp = days == 0 ? DateTimeOffset.UtcNow.AddSeconds(secondsAfterNow) : s_now.AddDays(days).AddMinutes(cases.Length);
        var body = JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["run_id"] = runId,
            ["status"] = "passed",
            ["duration_ms"] = 1000,
            ["timestamp"] = timestamp.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture),
            ["commit_sha"] = commit,
            ["tests"] = cases,
        });
        using var response = await _server.IngestAsync(tenant.ProjectToken, body);
        await Json.ReadAsync(response, HttpStatusCode.Created);
    }

    private static Dictionary<string, object?> Case(string name, string status, int? attempt = null, string? message = null) =>
        new Dictionary<string, object?>
        {
            ["suite"] = "Suite",
            ["name"] = name,
            ["status"] = status,
            ["duration_ms"] = 12,
            ["attempt"] = attempt,
            ["failure_message"] = message,
        }.Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value);

    private async Task<JsonElement> TestsAsync(Tenant tenant, string query) =>
        (await GetAsync(tenant, "/v1/tests?" + query)).GetProperty("tests");

    private async Task<JsonElement> GetAsync(Tenant tenant, string path)
    {
        using var response = await _server.SendAsync(HttpMethod.Get, path, tenant.ProjectToken);
        return await Json.ReadAsync(response, HttpStatusCode.OK);
    }

    private static int Int(JsonElement element, string name) => element.GetProperty(name).GetInt32();

    private static string[] States(JsonElement test) => test.GetProperty("states").EnumerateArray().Select(s => s.GetString()!).ToArray();

    private static string[] Names(JsonElement tests) => tests.EnumerateArray().Select(t => t.GetProperty("name").GetString()!).ToArray();
}

public sealed class SqliteTestAnalyticsTests : TestAnalyticsTests
{
    protected override Task<TestServer> StartServerAsync() => TestServer.StartAsync();
}

public sealed class PostgresTestAnalyticsTests : TestAnalyticsTests
{
    protected override async Task<TestServer> StartServerAsync() => await TestServer.StartAsync(postgres: await PostgresCluster.CreateDatabaseAsync("analytics"));
}
