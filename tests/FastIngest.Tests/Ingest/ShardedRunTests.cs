using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using FastIngest.Tests.Infrastructure;
using FastIngest.Tests.TestCases;

namespace FastIngest.Tests.Ingest;

/// <summary>
/// Several uploads with one run id and different shard names are one run: counts summed, failed if any shard
/// failed, the longest shard's duration, the test cases of every shard. Each shard is idempotent on its own.
/// </summary>
public abstract class ShardedRunTests : IAsyncLifetime
{
    protected abstract Task<TestServer> StartServerAsync();

    private TestServer _server = null!;
    private Tenant _tenant = null!;

    public async Task InitializeAsync()
    {
        _server = await StartServerAsync();
        _tenant = await _server.CreateTenantAsync("shards");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static string Shard(string runId, string? shard, long durationMs, string timestamp = "2026-03-02T10:00:00Z",
        string? branch = "main", string? commit = "abc1234", params (string Name, string Status)[] tests)
    {
        var body = new JsonObject
        {
            ["run_id"] = runId,
            ["status"] = tests.Any(t => t.Status == "failed") ? "failed" : "passed",
            ["duration_ms"] = durationMs,
            ["timestamp"] = timestamp,
            ["tests"] = new JsonArray(tests.Select(t => (JsonNode)new JsonObject
            {
                ["suite"] = "suite",
                ["name"] = t.Name,
                ["status"] = t.Status,
                ["duration_ms"] = 5,
            }).ToArray()),
        };
        if (shard is not null)
        {
            body["shard"] = shard;
        }

        if (branch is not null)
        {
            body["branch"] = branch;
        }

        if (commit is not null)
        {
            body["commit_sha"] = commit;
        }

        return body.ToJsonString();
    }

    private async Task<JsonElement> PostAsync(string json, HttpStatusCode expected)
    {
        using var response = await _server.IngestAsync(_tenant.ProjectToken, json);
        return expected is HttpStatusCode.OK or HttpStatusCode.Created
            ? await Json.ReadAsync(response, expected)
            : await Json.ReadProblemAsync(response, expected);
    }

    private async Task<JsonElement> GetAsync(string path)
    {
        using var response = await _server.SendAsync(HttpMethod.Get, path, _tenant.ProjectToken);
        return await Json.ReadAsync(response, HttpStatusCode.OK);
    }

    private static (long Total, long Passed, long Failed) Counts(JsonElement run)
    {
        var counts = run.GetProperty("counts");
        return (counts.GetProperty("total").GetInt64(), counts.GetProperty("passed").GetInt64(), counts.GetProperty("failed").GetInt64());
    }

    [Fact]
    public async Task ShardsOfOneRunIdAreOneRunWithSummedCountsTheLongestDurationAndFailedIfAnyShardFailed()
    {
        var first = await PostAsync(Shard("pipeline-1", "unit-1/2", 1000, tests: [("a", "passed"), ("b", "passed")]), HttpStatusCode.Created);
        await PostAsync(Shard("pipeline-1", "unit-2/2", 2500, "2026-03-02T10:05:00Z", tests: [("c", "passed"), ("d", "failed"), ("e", "passed")]),
            HttpStatusCode.Created);

        Assert.Equal("unit-1/2", first.GetProperty("shard").GetString());
        var run = await GetAsync("/v1/runs/pipeline-1");
        Assert.Equal(("failed", 2500L), (run.GetProperty("status").GetString(), run.GetProperty("duration_ms").GetInt64()));
        Assert.Equal((5L, 4L, 1L), Counts(run));
        Assert.Equal("2026-03-02T10:00:00.000Z", run.GetProperty("timestamp").GetString()); // the first shard's
        Assert.Equal(2, run.GetProperty("shard_count").GetInt32());
        var shards = run.GetProperty("shards").EnumerateArray().ToList();
        Assert.Equal([("unit-1/2", "passed", 1000L), ("unit-2/2", "failed", 2500L)],
            shards.Select(s => (s.GetProperty("shard").GetString(), s.GetProperty("status").GetString(), s.GetProperty("duration_ms").GetInt64())));

        var listed = (await GetAsync("/v1/runs")).GetProperty("runs").EnumerateArray().ToList();
        var only = Assert.Single(listed);
        Assert.Equal(("pipeline-1", "failed", 2), (only.GetProperty("run_id").GetString(), only.GetProperty("status").GetString(), only.GetProperty("shard_count").GetInt32()));
        var failedOnly = (await GetAsync("/v1/runs?status=failed")).GetProperty("runs");
        Assert.Equal(1, failedOnly.GetArrayLength());
    }

    [Fact]
    public async Task ARunsTestsPageAcrossItsShardsWithoutGapsOrRepeats()
    {
        await PostAsync(Shard("paged", "s1", 10, tests: [("a", "passed"), ("b", "failed"), ("c", "passed")]), HttpStatusCode.Created);
        await PostAsync(Shard("paged", "s2", 10, tests: [("a", "passed"), ("d", "passed")]), HttpStatusCode.Created); // 'a' in both shards
        await PostAsync(Shard("paged", "s3", 10, tests: [("e", "failed")]), HttpStatusCode.Created);

        var seen = new List<(string?, string?)>();
        string? cursor = null;
        do
        {
            var page = await GetAsync("/v1/runs/paged/tests?limit=2" + (cursor is null ? "" : "&cursor=" + cursor));
            seen.AddRange(page.GetProperty("tests").EnumerateArray().Select(t => (t.GetProperty("shard").GetString(), t.GetProperty("name").GetString())));
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);

        Assert.Equal([("s1", "a"), ("s1", "b"), ("s1", "c"), ("s2", "a"), ("s2", "d"), ("s3", "e")], seen);
        var failed = (await GetAsync("/v1/runs/paged/tests?status=failed")).GetProperty("tests").EnumerateArray()
            .Select(t => t.GetProperty("name").GetString()).ToList();
        Assert.Equal(["b", "e"], failed);
    }

    [Fact]
    public async Task EachShardIsIdempotentOnItsOwnAndAChangedShardIsAConflictThatChangesNothing()
    {
        var shard = Shard("retry", "s1", 100, tests: [("a", "passed")]);
        await PostAsync(shard, HttpStatusCode.Created);
        await PostAsync(Shard("retry", "s2", 100, tests: [("b", "passed")]), HttpStatusCode.Created);

        var again = await PostAsync(shard, HttpStatusCode.OK);
        var changed = await PostAsync(Shard("retry", "s1", 100, tests: [("a", "failed")]), HttpStatusCode.Conflict);

        Assert.True(again.GetProperty("duplicate").GetBoolean(), again.ToString());
        Assert.Contains("Shard 's1' of run 'retry'", changed.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var run = await GetAsync("/v1/runs/retry");
        Assert.Equal(("passed", 2), (run.GetProperty("status").GetString(), run.GetProperty("shard_count").GetInt32()));
        Assert.Equal((2L, 2L, 0L), Counts(run));
    }

    [Fact]
    public async Task ARunIsEitherOneUploadOrShardsAndEveryShardNamesTheRunsBranchAndCommit()
    {
        await PostAsync(Shard("whole", null, 100, tests: [("a", "passed")]), HttpStatusCode.Created);
        await PostAsync(Shard("sharded", "s1", 100, tests: [("a", "passed")]), HttpStatusCode.Created);

        var shardOfWhole = await PostAsync(Shard("whole", "s1", 100, tests: [("a", "passed")]), HttpStatusCode.Conflict);
        var wholeOfSharded = await PostAsync(Shard("sharded", null, 100, tests: [("a", "passed")]), HttpStatusCode.Conflict);
        var otherBranch = await PostAsync(Shard("sharded", "s2", 100, branch: "dev", tests: [("b", "passed")]), HttpStatusCode.Conflict);
        var otherCommit = await PostAsync(Shard("sharded", "s2", 100, commit: "fff9999", tests: [("b", "passed")]), HttpStatusCode.Conflict);

        Assert.Contains("stored without shards", shardOfWhole.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("is stored in shards", wholeOfSharded.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("same branch and commit", otherBranch.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("same branch and commit", otherCommit.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, (await GetAsync("/v1/runs/whole")).GetProperty("shard_count").GetInt32());
        Assert.Equal(1, (await GetAsync("/v1/runs/sharded")).GetProperty("shard_count").GetInt32());
    }

    [Fact]
    public async Task ShardsArrivingConcurrentlyOnManyConnectionsAllJoinTheRun()
    {
        const int Shards = 24;
        var responses = await Task.WhenAll(Enumerable.Range(0, Shards).Select(i =>
            _server.IngestAsync(_tenant.ProjectToken, Shard("burst", $"shard-{i}", 100 + i, tests: [($"t{i}", i % 5 == 0 ? "failed" : "passed")]))));
        foreach (var response in responses)
        {
            await Json.ReadAsync(response, HttpStatusCode.Created);
            response.Dispose();
        }

        var run = await GetAsync("/v1/runs/burst");
        Assert.Equal((Shards, "failed", 100L + Shards - 1), (run.GetProperty("shard_count").GetInt32(), run.GetProperty("status").GetString(), run.GetProperty("duration_ms").GetInt64()));
        Assert.Equal((24L, 19L, 5L), Counts(run));
    }

    [Fact]
    public async Task AnotherTenantUsingTheSameRunIdAndShardNamesInTheSameBatchesGetsARunOfItsOwn()
    {
        var other = await _server.CreateTenantAsync("shards-other");
        var uploads = Enumerable.Range(0, 8).SelectMany(i => new[]
        {
            _server.IngestAsync(_tenant.ProjectToken, Shard("shared-id", $"s{i}", 10, tests: [($"mine{i}", "passed")])),
            _server.IngestAsync(other.ProjectToken, Shard("shared-id", $"s{i}", 10, tests: [($"theirs{i}", "failed")])),
        }).ToList();
        foreach (var response in await Task.WhenAll(uploads))
        {
            await Json.ReadAsync(response, HttpStatusCode.Created);
            response.Dispose();
        }

        var mine = await GetAsync("/v1/runs/shared-id");
        using var theirsResponse = await _server.SendAsync(HttpMethod.Get, "/v1/runs/shared-id", other.ProjectToken);
        var theirs = await Json.ReadAsync(theirsResponse, HttpStatusCode.OK);
        var myTests = (await GetAsync("/v1/runs/shared-id/tests")).GetProperty("tests").EnumerateArray().Select(t => t.GetProperty("name").GetString()!).ToList();

        Assert.Equal(("passed", 8, 8L), (mine.GetProperty("status").GetString(), mine.GetProperty("shard_count").GetInt32(), Counts(mine).Passed));
        Assert.Equal(("failed", 8, 8L), (theirs.GetProperty("status").GetString(), theirs.GetProperty("shard_count").GetInt32(), Counts(theirs).Failed));
        Assert.True(myTests.Count == 8 && myTests.All(n => n.StartsWith("mine", StringComparison.Ordinal)), string.Join(", ", myTests));
    }

    [Fact]
    public async Task StatsCountAShardedRunOnceEvenWhenAFailingShardArrivesAfterTheRunWasCounted()
    {
        await PostAsync(Shard("late", "s1", 1000, "2026-04-01T10:00:00Z", tests: [("a", "passed")]), HttpStatusCode.Created);
        var before = await GetAsync("/v1/stats?since=2026-04-01&until=2026-04-02"); // folds the first shard
        await PostAsync(Shard("late", "s2", 3000, "2026-04-01T10:07:00Z", tests: [("b", "failed")]), HttpStatusCode.Created);
        await PostAsync(Shard("late", "s3", 2000, "2026-04-01T10:09:00Z", tests: [("c", "passed")]), HttpStatusCode.Created);
        await PostAsync(Shard("other", null, 500, "2026-04-01T11:00:00Z", tests: [("a", "passed")]), HttpStatusCode.Created);

        var after = await GetAsync("/v1/stats?since=2026-04-01&until=2026-04-02&branch=main");

        Assert.Equal((1L, 1L, 0L), (before.GetProperty("total").GetInt64(), before.GetProperty("passed").GetInt64(), before.GetProperty("failed").GetInt64()));
        Assert.Equal((2L, 1L, 1L), (after.GetProperty("total").GetInt64(), after.GetProperty("passed").GetInt64(), after.GetProperty("failed").GetInt64()));
        var durations = after.GetProperty("duration_ms");
        Assert.Equal(3000, durations.GetProperty("max").GetInt64());
        // Two runs (500 ms and the merged 3000 ms): the 1000 ms the first shard counted on its own is gone.
        Assert.InRange(durations.GetProperty("p50").GetInt64(), 500, 525);
    }

    [Fact]
    public async Task ATestThatFailsInOneShardAndPassesInARetriedShardOfTheSameCommitIsFlaky()
    {
        var yesterday = DateTimeOffset.UtcNow.AddDays(-1).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        await PostAsync(Shard("retried", "test-101", 10, yesterday, tests: [("wobbly", "failed"), ("steady", "passed")]), HttpStatusCode.Created);
        await PostAsync(Shard("retried", "test-102", 10, yesterday, tests: [("wobbly", "passed"), ("steady", "passed")]), HttpStatusCode.Created);

        var flaky = (await GetAsync("/v1/tests?state=flaky")).GetProperty("tests").EnumerateArray().Select(t => t.GetProperty("name").GetString());
        Assert.Equal(["wobbly"], flaky);
    }

    [Fact]
    public async Task AJUnitUploadNamesItsShardByQueryOrHeaderWithTheRunIdsRules()
    {
        const string Report = """<testsuite name="s"><testcase classname="c" name="x"/></testsuite>""";
        using (var byQuery = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, Report, "run_id=junit-run&shard=linux"))
        {
            Assert.Equal("linux", (await Json.ReadAsync(byQuery, HttpStatusCode.Created)).GetProperty("shard").GetString());
        }

        using (var byHeader = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, System.Text.Encoding.UTF8.GetBytes(Report), "run_id=junit-run",
            headers: new Dictionary<string, string> { ["X-Run-Shard"] = "windows" }))
        {
            await Json.ReadAsync(byHeader, HttpStatusCode.Created);
        }

        using (var bad = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, Report, "run_id=junit-run&shard=a%20b"))
        {
            var problem = await Json.ReadProblemAsync(bad, HttpStatusCode.BadRequest);
            Assert.Contains("shard", problem.ToString(), StringComparison.Ordinal);
        }

        Assert.Equal(2, (await GetAsync("/v1/runs/junit-run")).GetProperty("shard_count").GetInt32());
    }

    [Fact]
    public async Task ARunTakesAtMostOneThousandShardsAndARetryOfAStoredShardIsStillADuplicate()
    {
        const int Max = 1000;
        var bodies = Enumerable.Range(0, Max).Select(i => Shard("wide", $"s{i}", 1, tests: [($"t{i}", "passed")])).ToList();
        using var gate = new SemaphoreSlim(16);
        await Task.WhenAll(bodies.Select(async body =>
        {
            await gate.WaitAsync();
            try
            {
                using var response = await _server.IngestAsync(_tenant.ProjectToken, body);
                await Json.ReadAsync(response, HttpStatusCode.Created);
            }
            finally
            {
                gate.Release();
            }
        }));

        var refused = await PostAsync(Shard("wide", "one-too-many", 1, tests: [("x", "passed")]), HttpStatusCode.Conflict);
        var retry = await PostAsync(bodies[7], HttpStatusCode.OK);

        Assert.Contains("1000 shards", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(retry.GetProperty("duplicate").GetBoolean(), retry.ToString());
        var run = await GetAsync("/v1/runs/wide");
        Assert.Equal((Max, (long)Max), (run.GetProperty("shard_count").GetInt32(), Counts(run).Total));
    }

    [Fact]
    public async Task AnInvalidShardInJsonIsAFieldError()
    {
        var body = Shard("bad-shard", "x", 10, tests: [("a", "passed")]).Replace("\"shard\":\"x\"", "\"shard\":\"<x>\"", StringComparison.Ordinal);
        var problem = await PostAsync(body, HttpStatusCode.BadRequest);
        Assert.Contains("\"shard\"", problem.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PurgingTakesAShardedRunWithAllItsShardsAndCountsItOnce()
    {
        await PostAsync(Shard("old", "s1", 10, "2025-01-02T10:00:00Z", tests: [("a", "passed")]), HttpStatusCode.Created);
        await PostAsync(Shard("old", "s2", 10, "2025-01-02T10:05:00Z", tests: [("b", "failed")]), HttpStatusCode.Created);
        await PostAsync(Shard("new", "s1", 10, "2026-03-02T10:00:00Z", tests: [("a", "passed")]), HttpStatusCode.Created);

        var answer = await _server.ConfirmAndFinishAsync(HttpMethod.Post, $"/v1/projects/{_tenant.ProjectId}/purge", _tenant.OrgToken,
            """{"before":"2026-01-01"}""");

        Assert.Contains("\"deleted_runs\":1", answer.ToString().Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
        using var gone = await _server.SendAsync(HttpMethod.Get, "/v1/runs/old", _tenant.ProjectToken);
        await Json.ReadProblemAsync(gone, HttpStatusCode.NotFound);
        using var goneTests = await _server.SendAsync(HttpMethod.Get, "/v1/runs/old/tests", _tenant.ProjectToken);
        await Json.ReadProblemAsync(goneTests, HttpStatusCode.NotFound);
        Assert.Equal(1, (await GetAsync("/v1/runs/new")).GetProperty("shard_count").GetInt32());
    }
}

public sealed class SqliteShardedRunTests : ShardedRunTests
{
    protected override Task<TestServer> StartServerAsync() => TestServer.StartAsync();
}

public sealed class PostgresShardedRunTests : ShardedRunTests
{
    protected override async Task<TestServer> StartServerAsync() => await TestServer.StartAsync(postgres: await PostgresCluster.CreateDatabaseAsync("shards"));
}
