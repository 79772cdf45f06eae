using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using FastIngest.Auth;
using FastIngest.Configuration;
using FastIngest.RateLimiting;
using FastIngest.Storage;
using FastIngest.Storage.Sqlite;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Destructive;

public sealed class ConfirmTokenTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(configure: o => o with
    {
        RateLimits = new RateLimitOptions { ConfirmPerWindow = 1000, ManagementPerWindow = 1000 },
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string token, string? confirm = null, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new("Bearer", token);
        if (confirm is not null)
        {
            request.Headers.Add("X-Confirm-Token", confirm);
        }

        if (json is not null)
        {
            request.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        }

        return await _server.Client.SendAsync(request);
    }

    private async Task<string> IssueAsync(HttpMethod method, string path, string token, string? json = null)
    {
        using var response = await SendAsync(method, path, token, json: json);
        return (await Json.ReadAsync(response, HttpStatusCode.Accepted)).GetProperty("confirm_token").GetString()!;
    }

    [Fact]
    public async Task DeleteProjectTakesTwoStepsAndRemovesRunsAndTokens()
    {
        var tenant = await _server.CreateTenantAsync("delete-me");
        for (var i = 0; i < 3; i++)
        {
            (await _server.IngestAsync(tenant.ProjectToken, TestServer.Run($"d-{i}"))).Dispose();
        }

        using var first = await SendAsync(HttpMethod.Delete, $"/v1/projects/{tenant.ProjectId}", tenant.OrgToken);
        var issued = await Json.ReadAsync(first, HttpStatusCode.Accepted);
        Assert.Equal("delete_project", issued.GetProperty("action").GetString());
        Assert.Equal(3, issued.GetProperty("effect").GetProperty("runs").GetInt64());
        Assert.StartsWith("fic_", issued.GetProperty("confirm_token").GetString(), StringComparison.Ordinal);

        using (var stillThere = await _server.SendAsync(HttpMethod.Get, "/v1/runs/d-0", tenant.ProjectToken))
        {
            Assert.Equal(HttpStatusCode.OK, stillThere.StatusCode); // the first call changed nothing
        }

        using var second = await SendAsync(HttpMethod.Delete, $"/v1/projects/{tenant.ProjectId}", tenant.OrgToken, issued.GetProperty("confirm_token").GetString());
        // The project is gone as soon as the confirmed call answers; its data goes in a job the answer names.
        using (var goneAtOnce = await _server.SendAsync(HttpMethod.Get, "/v1/runs/d-0", tenant.ProjectToken))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, goneAtOnce.StatusCode);
        }

        var done = await _server.FinishJobAsync(second, tenant.OrgToken);
        Assert.Equal("delete_project", done.GetProperty("action").GetString());
        Assert.Equal(3, done.GetProperty("deleted_runs").GetInt64());
        Assert.Equal(1, done.GetProperty("revoked_tokens").GetInt64()); // the project's one token

        using var gone = await _server.SendAsync(HttpMethod.Get, "/v1/runs/d-0", tenant.ProjectToken);
        Assert.Equal(HttpStatusCode.Unauthorized, gone.StatusCode); // its token went with it
        using var listing = await _server.SendAsync(HttpMethod.Get, $"/v1/projects/{tenant.ProjectId}/tokens", tenant.OrgToken);
        Assert.Equal(HttpStatusCode.NotFound, listing.StatusCode);
    }

    [Fact]
    public async Task HundredConcurrentConsumersOfOneConfirmTokenGiveExactlyOneSuccess()
    {
        var tenant = await _server.CreateTenantAsync("race");
        var confirm = await IssueAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/tokens/revoke-all", tenant.OrgToken);

        var statuses = new ConcurrentBag<HttpStatusCode>();
        await Task.WhenAll(Enumerable.Range(0, 100).Select(async _ =>
        {
            using var response = await SendAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/tokens/revoke-all", tenant.OrgToken, confirm);
            statuses.Add(response.StatusCode);
        }));

        Assert.Equal(1, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(99, statuses.Count(s => s == HttpStatusCode.Conflict));
    }

    [Fact]
    public async Task ReplayedMismatchedAndUnknownTokensAreRejectedAndDoNothing()
    {
        var tenant = await _server.CreateTenantAsync("mismatch");
        var other = await _server.CreateTenantAsync("mismatch-other");
        var purgeBody = """{"before":"2026-01-01"}""";
        var purge = await IssueAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/purge", tenant.OrgToken, purgeBody);

        // Another action with this token: 403, and the token survives.
        using (var wrongAction = await SendAsync(HttpMethod.Delete, $"/v1/projects/{tenant.ProjectId}", tenant.OrgToken, purge))
        {
            Assert.Equal("urn:fastingest:problem:confirm-token-mismatch", (await Json.ReadProblemAsync(wrongAction, HttpStatusCode.Forbidden)).GetProperty("type").GetString());
        }

        // Another cut-off date is another target.
        using (var wrongTarget = await SendAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/purge", tenant.OrgToken, purge, """{"before":"2027-01-01"}"""))
        {
            await Json.ReadProblemAsync(wrongTarget, HttpStatusCode.Forbidden);
        }

        // Another credential, even the admin, cannot spend it.
        using (var wrongCredential = await SendAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/purge", _server.AdminToken, purge, purgeBody))
        {
            await Json.ReadProblemAsync(wrongCredential, HttpStatusCode.Forbidden);
        }

        // A foreign tenant's object is 404 before any token is looked at.
        using (var foreign = await SendAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/purge", other.OrgToken, purge, purgeBody))
        {
            await Json.ReadProblemAsync(foreign, HttpStatusCode.NotFound);
        }

        using (var unknown = await SendAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/purge", tenant.OrgToken, "fic_" + new string('0', 64), purgeBody))
        {
            await Json.ReadProblemAsync(unknown, HttpStatusCode.BadRequest);
        }

        using (var ok = await SendAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/purge", tenant.OrgToken, purge, purgeBody))
        {
            await _server.FinishJobAsync(ok, tenant.OrgToken);
        }

        using var replay = await SendAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/purge", tenant.OrgToken, purge, purgeBody);
        await Json.ReadProblemAsync(replay, HttpStatusCode.Conflict);
        Assert.Contains(_server.Logs.Lines, l => l.Contains("\"event\":\"confirm_rejected\"", StringComparison.Ordinal) && l.Contains("\"reason\":\"mismatch\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ExpiredTokensAreRejectedWithoutBeingSpent()
    {
        using var database = new SqliteDatabase(Path.Combine(Directory.CreateTempSubdirectory("fastingest-confirm-").FullName, "fastingest.db"), DurabilityMode.Full);
        database.Migrate();
        using var writer = new SqliteRunBatchStore(database, DurabilityMode.Full);
        var store = new SqliteConfirmTokenStore(new SqliteWrites(new InlineStorageWriter(writer), writer));
        await store.InsertAsync(new ConfirmTokenRecord("hash", "purge_runs", "project:p", "tok", "summary", 0, 1000));

        Assert.Equal(ConfirmOutcome.Expired, await store.TryConsumeAsync("hash", "purge_runs", "project:p", "tok", 1000));
        Assert.Equal(ConfirmOutcome.Consumed, await store.TryConsumeAsync("hash", "purge_runs", "project:p", "tok", 999));
        Assert.Equal(ConfirmOutcome.AlreadyUsed, await store.TryConsumeAsync("hash", "purge_runs", "project:p", "tok", 999));
    }

    [Fact]
    public async Task AConfirmTokenStillWorksOnceAfterARestart()
    {
        var dir = Directory.CreateTempSubdirectory("fastingest-confirm-restart-").FullName;
        var admin = ApiTokenFormat.Generate(TokenScope.Admin).Token;
        string confirm;
        Tenant tenant;
        await using (var before = await TestServer.StartAsync(dir, admin))
        {
            tenant = await before.CreateTenantAsync("restart");
            using var issued = await before.SendAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/tokens/revoke-all", tenant.OrgToken, "");
            confirm = (await Json.ReadAsync(issued, HttpStatusCode.Accepted)).GetProperty("confirm_token").GetString()!;
        }

        await using var after = await TestServer.StartAsync(dir, admin);
        async Task<HttpStatusCode> ConsumeAsync()
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/tokens/revoke-all");
            request.Headers.Authorization = new("Bearer", tenant.OrgToken);
            request.Headers.Add("X-Confirm-Token", confirm);
            using var response = await after.Client.SendAsync(request);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await ConsumeAsync());
        Assert.Equal(HttpStatusCode.Conflict, await ConsumeAsync());
    }

    [Fact]
    public async Task PurgeDuringIngestLosesNoNewRunAndRemovesOnlyOldOnes()
    {
        var tenant = await _server.CreateTenantAsync("purge");
        await Task.WhenAll(Enumerable.Range(0, 1500).Select(async i =>
        {
            using var r = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run($"old-{i}", timestamp: "2025-06-01T10:00:00Z"));
            Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        }));

        var confirm = await IssueAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/purge", tenant.OrgToken, """{"before":"2026-01-01"}""");
        var acknowledged = new ConcurrentBag<string>();
        using var stop = new CancellationTokenSource();
        var ingest = Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                using var r = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run($"new-{i}", timestamp: "2026-02-01T10:00:00Z"));
                if (r.StatusCode == HttpStatusCode.Created)
                {
                    acknowledged.Add($"new-{i}");
                }
            }
        });

        using var purged = await SendAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/purge", tenant.OrgToken, confirm, """{"before":"2026-01-01"}""");
        var done = await _server.FinishJobAsync(purged, tenant.OrgToken);
        await Task.Delay(100);
        await stop.CancelAsync();
        await ingest;

        Assert.Equal(1500, done.GetProperty("deleted_runs").GetInt64());
        Assert.NotEmpty(acknowledged);
        using var stats = await _server.SendAsync(HttpMethod.Get, "/v1/stats?since=2025-01-01&until=2027-01-01", tenant.ProjectToken);
        Assert.Equal(acknowledged.Count, (await Json.ReadAsync(stats, HttpStatusCode.OK)).GetProperty("total").GetInt64());
        foreach (var runId in acknowledged)
        {
            using var read = await _server.SendAsync(HttpMethod.Get, $"/v1/runs/{runId}", tenant.ProjectToken);
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        }
    }

    [Fact]
    public async Task BackupWritesASnapshotThatPassesIntegrityCheck()
    {
        var tenant = await _server.CreateTenantAsync("backup");
        (await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("in-backup"))).Dispose();

        using var forbidden = await SendAsync(HttpMethod.Post, "/v1/admin/backup", tenant.OrgToken);
        await Json.ReadProblemAsync(forbidden, HttpStatusCode.Forbidden);

        using var response = await SendAsync(HttpMethod.Post, "/v1/admin/backup", _server.AdminToken);
        var job = await _server.FinishJobAsync(response, _server.AdminToken);
        var path = job.GetProperty("path").GetString()!;
        Assert.Equal(new FileInfo(path).Length, job.GetProperty("bytes").GetInt64());

        // The job is the admin's: a tenant's token cannot see it.
        using (var foreign = await SendAsync(HttpMethod.Get, job.GetProperty("url").GetString()!, tenant.OrgToken))
        {
            await Json.ReadProblemAsync(foreign, HttpStatusCode.NotFound);
        }

        using var backup = new SqliteDatabase(path, DurabilityMode.Full);
        using var lease = backup.Read();
        var connection = lease.Connection;
        using var check = connection.CreateCommand();
        check.CommandText = "PRAGMA integrity_check;";
        Assert.Equal("ok", check.ExecuteScalar());
        check.CommandText = "SELECT count(*) FROM test_runs WHERE run_id = 'in-backup';";
        Assert.Equal(1L, check.ExecuteScalar());
    }

    [Fact]
    public async Task APurgeJobIsSeenByItsOrgAndIsNotFoundForAnyOtherTenant()
    {
        var tenant = await _server.CreateTenantAsync("job-owner");
        var other = await _server.CreateTenantAsync("job-other");
        (await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("job-old", timestamp: "2025-06-01T10:00:00Z"))).Dispose();
        var job = await _server.ConfirmAndFinishAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/purge", tenant.OrgToken, """{"before":"2026-01-01"}""");
        Assert.Equal(1, job.GetProperty("deleted_runs").GetInt64());
        Assert.Equal(tenant.ProjectId, job.GetProperty("target").GetString());
        var url = job.GetProperty("url").GetString()!;

        using (var admin = await SendAsync(HttpMethod.Get, url, _server.AdminToken))
        {
            Assert.Equal("succeeded", (await Json.ReadAsync(admin, HttpStatusCode.OK)).GetProperty("status").GetString());
        }

        foreach (var stranger in new[] { other.OrgToken, other.ProjectToken })
        {
            using var foreign = await SendAsync(HttpMethod.Get, url, stranger);
            await Json.ReadProblemAsync(foreign, HttpStatusCode.NotFound);
        }

        using var unknown = await SendAsync(HttpMethod.Get, "/v1/jobs/job_" + new string('0', 32), tenant.OrgToken);
        await Json.ReadProblemAsync(unknown, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task DeleteOrgRemovesItsProjectsAndIsAdminOrOwnOrgOnly()
    {
        var tenant = await _server.CreateTenantAsync("org-delete");
        var other = await _server.CreateTenantAsync("org-delete-other");
        using (var foreign = await SendAsync(HttpMethod.Delete, $"/v1/orgs/{tenant.OrgId}", other.OrgToken))
        {
            await Json.ReadProblemAsync(foreign, HttpStatusCode.NotFound);
        }

        var confirm = await IssueAsync(HttpMethod.Delete, $"/v1/orgs/{tenant.OrgId}", _server.AdminToken);
        using var done = await SendAsync(HttpMethod.Delete, $"/v1/orgs/{tenant.OrgId}", _server.AdminToken, confirm);
        var body = await _server.FinishJobAsync(done, _server.AdminToken);
        Assert.True(body.GetProperty("revoked_tokens").GetInt64() >= 2);
        using var gone = await SendAsync(HttpMethod.Post, "/v1/projects", tenant.OrgToken, json: JsonSerializer.Serialize(new { org_id = tenant.OrgId, name = "x" }));
        Assert.Equal(HttpStatusCode.Unauthorized, gone.StatusCode);
    }
}
