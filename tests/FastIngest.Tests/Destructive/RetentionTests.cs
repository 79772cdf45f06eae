using System.Net;
using FastIngest.Destructive;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Destructive;

public abstract class RetentionTests : IAsyncLifetime
{
    protected abstract Task<TestServer> StartServerAsync();

    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await StartServerAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<HttpResponseMessage> PatchAsync(Tenant tenant, string json, string? confirm = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Patch, $"/v1/projects/{tenant.ProjectId}")
        {
            Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new("Bearer", tenant.OrgToken);
        if (confirm is not null)
        {
            request.Headers.Add("X-Confirm-Token", confirm);
        }

        return await _server.Client.SendAsync(request);
    }

    [Fact]
    public async Task RetentionIsConfirmedThenTheJobDeletesOnlyRunsOutsideIt()
    {
        var tenant = await _server.CreateTenantAsync("retention");
        var old = DateTimeOffset.UtcNow.AddDays(-10).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        var recent = DateTimeOffset.UtcNow.AddHours(-1).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        (await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("old-run", timestamp: old))).Dispose();
        (await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("recent-run", timestamp: recent))).Dispose();

        using var first = await PatchAsync(tenant, """{"retention_days":7}""");
        var issued = await Json.ReadAsync(first, HttpStatusCode.Accepted);
        Assert.Equal(1, issued.GetProperty("effect").GetProperty("runs_outside_retention").GetInt64());

        // A token issued for 7 days cannot set 1 day.
        using (var other = await PatchAsync(tenant, """{"retention_days":1}""", issued.GetProperty("confirm_token").GetString()))
        {
            await Json.ReadProblemAsync(other, HttpStatusCode.Forbidden);
        }

        using var second = await PatchAsync(tenant, """{"retention_days":7}""", issued.GetProperty("confirm_token").GetString());
        Assert.Equal(7, (await Json.ReadAsync(second, HttpStatusCode.OK)).GetProperty("retention_days").GetInt32());

        Assert.True(await _server.Service<RetentionJob>().RunOnceAsync() >= 1);
        using var oldRead = await _server.SendAsync(HttpMethod.Get, "/v1/runs/old-run", tenant.ProjectToken);
        Assert.Equal(HttpStatusCode.NotFound, oldRead.StatusCode);
        using var recentRead = await _server.SendAsync(HttpMethod.Get, "/v1/runs/recent-run", tenant.ProjectToken);
        Assert.Equal(HttpStatusCode.OK, recentRead.StatusCode);
        using var stats = await _server.SendAsync(HttpMethod.Get, "/v1/stats?window=30d", tenant.ProjectToken);
        Assert.Equal(1, (await Json.ReadAsync(stats, HttpStatusCode.OK)).GetProperty("total").GetInt64());
    }

    [Theory]
    [InlineData("""{"retention_days":0}""")]
    [InlineData("""{"retention_days":"7"}""")]
    [InlineData("""{"retention":7}""")]
    public async Task BadRetentionBodiesAre400(string json)
    {
        var tenant = await _server.CreateTenantAsync("retention-bad-" + Guid.NewGuid().ToString("N")[..6]);
        using var response = await PatchAsync(tenant, json);
        await Json.ReadProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task ConfirmTokensAreDeletedADayAfterTheyExpiredAndNotBefore()
    {
        var store = _server.Service<FastIngest.Storage.IConfirmTokenStore>();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var day = (long)TimeSpan.FromDays(1).TotalMilliseconds;
        await store.InsertAsync(new FastIngest.Storage.ConfirmTokenRecord("old", "purge_runs", "project:x", "t", "s", now - (3 * day), now - (2 * day)));
        await store.InsertAsync(new FastIngest.Storage.ConfirmTokenRecord("recent", "purge_runs", "project:x", "t", "s", now - day, now - (day / 2)));

        await _server.Service<RetentionJob>().RunOnceAsync();

        Assert.Equal(FastIngest.Storage.ConfirmOutcome.Unknown, await store.TryConsumeAsync("old", "purge_runs", "project:x", "t", now));
        Assert.Equal(FastIngest.Storage.ConfirmOutcome.Expired, await store.TryConsumeAsync("recent", "purge_runs", "project:x", "t", now));
    }
}

public sealed class SqliteRetentionTests : RetentionTests
{
    protected override Task<TestServer> StartServerAsync() => TestServer.StartAsync();
}

public sealed class PostgresRetentionTests : RetentionTests
{
    protected override async Task<TestServer> StartServerAsync() => await TestServer.StartAsync(postgres: await PostgresCluster.CreateDatabaseAsync("retention"));
}
