using System.Net;
using System.Text;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Quarantine;

public abstract class QuarantineTests : IAsyncLifetime
{
    protected abstract Task<TestServer> StartServerAsync();

    private const string Report = """
        <testsuite name="s">
          <testcase classname="pay" name="known_flaky"><failure message="timeout"/></testcase>
          <testcase classname="pay" name="real_bug"><failure message="wrong total"/></testcase>
          <testcase classname="pay" name="fine"/>
        </testsuite>
        """;

    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await StartServerAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task TheIngestAnswerSaysWhichFailuresAreQuarantinedAndWhichBlock()
    {
        var tenant = await _server.CreateTenantAsync("quarantine-answer");
        using (var put = await _server.PostAsync($"/v1/projects/{tenant.ProjectId}/quarantine", tenant.OrgToken,
            new { suite = "pay", name = "known_flaky", reason = "times out on shared runners, JIRA-12" }))
        {
            var entry = await Json.ReadAsync(put, HttpStatusCode.Created);
            Assert.StartsWith("qua_", entry.GetProperty("id").GetString(), StringComparison.Ordinal);
        }

        using var upload = await TestCases.JUnitUploads.PostAsync(_server, tenant.ProjectToken, Encoding.UTF8.GetBytes(Report), "run_id=q-1");
        var answer = await Json.ReadAsync(upload, HttpStatusCode.Created);

        Assert.Equal((2, 1, 1), (answer.GetProperty("failed_tests").GetInt32(), answer.GetProperty("quarantined_failures").GetInt32(),
            answer.GetProperty("blocking_failures").GetInt32()));
    }

    [Fact]
    public async Task ProjectTokensReadTheQuarantineOnlyManagersChangeItAndEveryChangeIsRecorded()
    {
        var tenant = await _server.CreateTenantAsync("quarantine-crud");
        using (var refused = await _server.PostAsync($"/v1/projects/{tenant.ProjectId}/quarantine", tenant.ProjectToken,
            new { suite = "s", name = "t", reason = "r" }))
        {
            await Json.ReadProblemAsync(refused, HttpStatusCode.Forbidden);
        }

        string id;
        using (var put = await _server.PostAsync($"/v1/projects/{tenant.ProjectId}/quarantine", tenant.OrgToken, new { suite = "s", name = "t", reason = "first" }))
        {
            id = (await Json.ReadAsync(put, HttpStatusCode.Created)).GetProperty("id").GetString()!;
        }

        using (var again = await _server.PostAsync($"/v1/projects/{tenant.ProjectId}/quarantine", tenant.OrgToken, new { suite = "s", name = "t", reason = "second" }))
        {
            await Json.ReadAsync(again, HttpStatusCode.OK); // the same test: its reason changes, no second entry
        }

        using (var list = await _server.SendAsync(HttpMethod.Get, $"/v1/projects/{tenant.ProjectId}/quarantine", tenant.ProjectToken))
        {
            var body = await Json.ReadAsync(list, HttpStatusCode.OK);
            var test = Assert.Single(body.GetProperty("tests").EnumerateArray());
            Assert.Equal("second", test.GetProperty("reason").GetString());
        }

        using (var removed = await _server.SendAsync(HttpMethod.Delete, $"/v1/projects/{tenant.ProjectId}/quarantine/{id}", tenant.OrgToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        }

        using var after = await _server.SendAsync(HttpMethod.Get, $"/v1/projects/{tenant.ProjectId}/quarantine", tenant.ProjectToken);
        var history = await Json.ReadAsync(after, HttpStatusCode.OK);
        Assert.Equal(0, history.GetProperty("tests").GetArrayLength());
        Assert.Equal(["released", "changed", "added"], history.GetProperty("changes").EnumerateArray().Select(c => c.GetProperty("action").GetString()));
    }

    [Fact]
    public async Task ThePolicyQuarantinesRecentFlakesReleasesThemWhenQuietAndLeavesPeoplesEntriesAlone()
    {
        var tenant = await _server.CreateTenantAsync("quarantine-auto");
        await FlakeAsync(tenant, "wobbly", DateTimeOffset.UtcNow.AddDays(-2), "aaaaaaa");
        await FlakeAsync(tenant, "ancient", DateTimeOffset.UtcNow.AddDays(-6), "bbbbbbb");
        using (var manual = await _server.PostAsync($"/v1/projects/{tenant.ProjectId}/quarantine", tenant.OrgToken,
            new { suite = "S", name = "ancient", reason = "known, tracked in JIRA-9" }))
        {
            await Json.ReadAsync(manual, HttpStatusCode.Created);
        }

        await PolicyAsync(tenant, new { auto = true, release_after_days = 3 });
        var on = await QuarantineAsync(tenant);
        Assert.Equal(["ancient:False", "wobbly:True"], on.GetProperty("tests").EnumerateArray()
            .Select(t => $"{t.GetProperty("name").GetString()}:{t.GetProperty("auto").GetBoolean()}").Order(StringComparer.Ordinal));
        Assert.True(on.GetProperty("policy").GetProperty("auto").GetBoolean());

        // Quiet for longer than the (now shorter) period: released by the policy; the person's entry stays.
        await PolicyAsync(tenant, new { auto = true, release_after_days = 1 });
        var quiet = await QuarantineAsync(tenant);
        Assert.Equal(["ancient"], quiet.GetProperty("tests").EnumerateArray().Select(t => t.GetProperty("name").GetString()!));
        var actions = quiet.GetProperty("changes").EnumerateArray().Select(c => c.GetProperty("action").GetString()).ToList();
        Assert.Contains("auto-added", actions);
        Assert.Contains("auto-released", actions);
    }

    private async Task FlakeAsync(Tenant tenant, string name, DateTimeOffset at, string commit)
    {
        foreach (var (runId, status) in new[] { ($"{name}-pass", "passed"), ($"{name}-fail", "failed") })
        {
            var body = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["run_id"] = runId,
                ["status"] = status,
                ["duration_ms"] = 10,
                ["timestamp"] = at.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture),
                ["commit_sha"] = commit,
                ["tests"] = new[] { new { suite = "S", name, status, duration_ms = 1 } },
            });
            using var response = await _server.IngestAsync(tenant.ProjectToken, body);
            await Json.ReadAsync(response, HttpStatusCode.Created);
        }
    }

    private async Task PolicyAsync(Tenant tenant, object policy)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/v1/projects/{tenant.ProjectId}/quarantine/policy")
        {
            Content = System.Net.Http.Json.JsonContent.Create(policy),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", tenant.OrgToken);
        using var response = await _server.Client.SendAsync(request);
        await Json.ReadAsync(response, HttpStatusCode.OK);
    }

    private async Task<System.Text.Json.JsonElement> QuarantineAsync(Tenant tenant)
    {
        using var response = await _server.SendAsync(HttpMethod.Get, $"/v1/projects/{tenant.ProjectId}/quarantine", tenant.ProjectToken);
        return await Json.ReadAsync(response, HttpStatusCode.OK);
    }

    [Fact]
    public async Task AnotherTenantsQuarantineIsA404AndAnExpiryInThePastIsRefused()
    {
        var owner = await _server.CreateTenantAsync("quarantine-owner");
        var stranger = await _server.CreateTenantAsync("quarantine-stranger");
        foreach (var (method, token) in new[] { (HttpMethod.Get, stranger.ProjectToken), (HttpMethod.Get, stranger.OrgToken), (HttpMethod.Post, stranger.OrgToken) })
        {
            using var response = method == HttpMethod.Post
                ? await _server.PostAsync($"/v1/projects/{owner.ProjectId}/quarantine", token, new { suite = "s", name = "t", reason = "r" })
                : await _server.SendAsync(method, $"/v1/projects/{owner.ProjectId}/quarantine", token);
            await Json.ReadProblemAsync(response, HttpStatusCode.NotFound);
        }

        using (var past = await _server.PostAsync($"/v1/projects/{owner.ProjectId}/quarantine", owner.OrgToken,
            new { suite = "pay", name = "known_flaky", reason = "r", expires_at = "2001-01-01T00:00:00Z" }))
        {
            var problem = await Json.ReadProblemAsync(past, HttpStatusCode.BadRequest);
            Assert.Contains("expires_at", problem.ToString(), StringComparison.Ordinal);
        }
    }
}

public sealed class SqliteQuarantineTests : QuarantineTests
{
    protected override Task<TestServer> StartServerAsync() => TestServer.StartAsync();
}

public sealed class PostgresQuarantineTests : QuarantineTests
{
    protected override async Task<TestServer> StartServerAsync() => await TestServer.StartAsync(postgres: await PostgresCluster.CreateDatabaseAsync("quarantine"));
}
