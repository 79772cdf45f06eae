using System.Net;
using System.Net.Http.Headers;
using System.Text;
using FastIngest.Storage;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Hostile;

/// <summary>
/// The races between a token's first use, its revocation, and its project's or org's deletion, replayed
/// deterministically: <see cref="BlockingHasher"/> holds the first use inside Argon2 (after the token's row was
/// read) while the revocation or deletion completes. Each of these let one org read or write another's data
/// before schema 7 and the retirement generation.
/// </summary>
public sealed class TenantIsolationTests : IAsyncLifetime
{
    private readonly BlockingHasher _hasher = new();
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(hasher: _hasher, configure: o => o with
    {
        RateLimits = new FastIngest.RateLimiting.RateLimitOptions { ConfirmPerWindow = 1000, ManagementPerWindow = 1000 },
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task TokenRevokedDuringItsFirstUseIsRefusedThenAndAfterwards()
    {
        var tenant = await _server.CreateTenantAsync("revoke-race");
        var hold = _hasher.HoldNextVerification(tenant.ProjectToken);
        var firstUse = _server.SendAsync(HttpMethod.Get, "/v1/runs", tenant.ProjectToken);
        await hold.Entered;

        using (var revoke = await _server.SendAsync(HttpMethod.Delete, $"/v1/tokens/{tenant.ProjectTokenId}", tenant.OrgToken))
        {
            Assert.True(revoke.StatusCode == HttpStatusCode.NoContent, $"revoke: {(int)revoke.StatusCode} {await revoke.Content.ReadAsStringAsync()}");
        }

        hold.Release();
        using var first = await firstUse;
        await AssertUnauthorizedAsync(first, "the first use that a revocation overtook");
        using var later = await _server.SendAsync(HttpMethod.Get, "/v1/runs", tenant.ProjectToken);
        await AssertUnauthorizedAsync(later, "a use after the revocation");
    }

    [Fact]
    public async Task OrgTokenRevokedDuringItsFirstUseCannotMintTokensOrDeleteProjects()
    {
        var tenant = await _server.CreateTenantAsync("org-revoke-race");
        using var second = await _server.PostAsync("/v1/tokens", _server.AdminToken, new { org_id = tenant.OrgId, scope = "org" });
        var secondJson = await Json.ReadAsync(second, HttpStatusCode.Created);
        var orgToken = secondJson.GetProperty("token").GetString()!;
        var orgTokenId = secondJson.GetProperty("id").GetString()!;

        var hold = _hasher.HoldNextVerification(orgToken);
        var firstUse = _server.PostAsync("/v1/tokens", orgToken, new { project_id = tenant.ProjectId });
        await hold.Entered;
        using (var revoke = await _server.SendAsync(HttpMethod.Delete, $"/v1/tokens/{orgTokenId}", _server.AdminToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        hold.Release();
        using var minted = await firstUse;
        await AssertUnauthorizedAsync(minted, "minting a token with the revoked org token");
        using var delete = await _server.SendAsync(HttpMethod.Delete, $"/v1/projects/{tenant.ProjectId}", orgToken);
        await AssertUnauthorizedAsync(delete, "starting a project delete with the revoked org token");
    }

    [Fact]
    public async Task TokenOfAProjectDeletedDuringItsFirstUseNeverReachesTheNextProjectCreated()
    {
        var victim = await _server.CreateTenantAsync("key-reuse-victim");
        var attacker = await _server.CreateTenantAsync("key-reuse-attacker");
        var attackerKey = (await _server.Service<ITenantStore>().FindProjectAsync(attacker.ProjectId))!.Key;

        var hold = _hasher.HoldNextVerification(attacker.ProjectToken);
        var firstUse = _server.SendAsync(HttpMethod.Get, "/v1/runs", attacker.ProjectToken);
        await hold.Entered;
        await _server.ConfirmAndFinishAsync(HttpMethod.Delete, $"/v1/projects/{attacker.ProjectId}", attacker.OrgToken);

        hold.Release();
        using (var first = await firstUse)
        {
            await AssertUnauthorizedAsync(first, "the first use of a token whose project was deleted meanwhile");
        }

        // The victim's org creates a project: before schema 7 it got the deleted project's internal key.
        using var created = await _server.PostAsync("/v1/projects", victim.OrgToken, new { org_id = victim.OrgId, name = "next" });
        var newProjectId = (await Json.ReadAsync(created, HttpStatusCode.Created)).GetProperty("id").GetString()!;
        var newKey = (await _server.Service<ITenantStore>().FindProjectAsync(newProjectId))!.Key;
        Assert.True(newKey > attackerKey, $"the new project got key {newKey}, the deleted one had {attackerKey}: keys must never be reused");

        using var victimToken = await _server.PostAsync("/v1/tokens", victim.OrgToken, new { project_id = newProjectId });
        var victimIngest = (await Json.ReadAsync(victimToken, HttpStatusCode.Created)).GetProperty("token").GetString()!;
        using (var stored = await _server.IngestAsync(victimIngest, TestServer.Run("victim-run")))
        {
            await Json.ReadAsync(stored, HttpStatusCode.Created);
        }

        using var write = await _server.IngestAsync(attacker.ProjectToken, TestServer.Run("planted"));
        await AssertUnauthorizedAsync(write, "writing with the deleted project's token");
        using var read = await _server.SendAsync(HttpMethod.Get, "/v1/runs/victim-run", attacker.ProjectToken);
        await AssertUnauthorizedAsync(read, "reading with the deleted project's token");
        using var list = await _server.SendAsync(HttpMethod.Get, $"/v1/runs?project_id={newProjectId}", victim.OrgToken);
        var runs = (await Json.ReadAsync(list, HttpStatusCode.OK)).GetProperty("runs");
        Assert.True(runs.GetArrayLength() == 1, $"the new project holds exactly its own run: {runs}");
    }

    [Fact]
    public async Task UploadInFlightWhileItsProjectIsDeletedIsRefusedAndLandsInNoOtherProject()
    {
        var victim = await _server.CreateTenantAsync("upload-victim");
        var attacker = await _server.CreateTenantAsync("upload-attacker");
        using (var warm = await _server.SendAsync(HttpMethod.Get, "/v1/runs", attacker.ProjectToken))
        {
            await Json.ReadAsync(warm, HttpStatusCode.OK); // the token is verified and cached
        }

        var body = new HeldBody(
            Encoding.UTF8.GetBytes("<testsuite name=\"s\"><testcase classname=\"c\" name=\"stolen-1\"/>"),
            Encoding.UTF8.GetBytes("<testcase classname=\"c\" name=\"stolen-2\"><failure message=\"leak\"/></testcase></testsuite>"));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest?run_id=shared-run-id") { Content = body };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", attacker.ProjectToken);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/xml");
        var upload = _server.Client.SendAsync(request);
        await body.HeadSent;
        await Eventually.TrueAsync(() => _server.Service<FastIngest.Ingest.UploadSpool>().Receiving == 1, "the upload to be arriving");

        await _server.ConfirmAndFinishAsync(HttpMethod.Delete, $"/v1/projects/{attacker.ProjectId}", attacker.OrgToken);

        using var created = await _server.PostAsync("/v1/projects", victim.OrgToken, new { org_id = victim.OrgId, name = "upload-next" });
        var newProjectId = (await Json.ReadAsync(created, HttpStatusCode.Created)).GetProperty("id").GetString()!;

        body.SendTail();
        using var finished = await upload;
        var answer = await finished.Content.ReadAsStringAsync();
        Assert.True(finished.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.NotFound,
            $"an upload whose project was deleted must be refused (401 or 404), got {(int)finished.StatusCode}: {answer}");

        using var list = await _server.SendAsync(HttpMethod.Get, $"/v1/runs?project_id={newProjectId}", victim.OrgToken);
        var runs = (await Json.ReadAsync(list, HttpStatusCode.OK)).GetProperty("runs");
        Assert.True(runs.GetArrayLength() == 0, $"the other org's new project must hold nothing: {runs}");
    }

    [Fact]
    public async Task OrgTokenRevokedWhileItsTokenRequestBodyIsArrivingMintsNothing()
    {
        var tenant = await _server.CreateTenantAsync("slow-mint");
        using var second = await _server.PostAsync("/v1/tokens", _server.AdminToken, new { org_id = tenant.OrgId, scope = "org" });
        var secondJson = await Json.ReadAsync(second, HttpStatusCode.Created);
        var orgToken = secondJson.GetProperty("token").GetString()!;
        using (var warm = await _server.SendAsync(HttpMethod.Get, $"/v1/projects/{tenant.ProjectId}/tokens", orgToken))
        {
            await Json.ReadAsync(warm, HttpStatusCode.OK);
        }

        var body = new HeldBody(Encoding.UTF8.GetBytes($$"""{"project_id":"{{tenant.ProjectId}}","""), Encoding.UTF8.GetBytes("\"name\":\"persist\"}"));
        body.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/tokens") { Content = body };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", orgToken);
        var hits = _server.Service<FastIngest.Observability.ServerMetrics>().TokenCacheLookups.WithLabels("hit");
        var hitsBefore = hits.Value;
        var mint = _server.Client.SendAsync(request);
        await body.HeadSent;
        await Eventually.TrueAsync(() => hits.Value > hitsBefore, "the server to authenticate the request before its body is complete");

        using (var revoke = await _server.SendAsync(HttpMethod.Delete, $"/v1/tokens/{secondJson.GetProperty("id").GetString()}", _server.AdminToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        body.SendTail();
        using var minted = await mint;
        await AssertUnauthorizedAsync(minted, "finishing a token request after the org token was revoked");
        using var list = await _server.SendAsync(HttpMethod.Get, $"/v1/projects/{tenant.ProjectId}/tokens", tenant.OrgToken);
        var listed = (await Json.ReadAsync(list, HttpStatusCode.OK)).GetProperty("tokens").ToString();
        Assert.DoesNotContain("persist", listed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RetentionJobFinishesADeletionThatAStopInterrupted()
    {
        var tenant = await _server.CreateTenantAsync("interrupted");
        using (var run = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("left-behind")))
        {
            await Json.ReadAsync(run, HttpStatusCode.Created);
        }

        // As if an earlier process began the deletion (long ago) and was killed before removing anything.
        var key = (await _server.Service<ITenantStore>().FindProjectAsync(tenant.ProjectId))!.Key;
        Assert.NotNull(await _server.Service<IDataRemovalStore>().BeginProjectDeletionAsync(key, nowMs: 1));

        var deleted = await _server.Service<FastIngest.Destructive.RetentionJob>().RunOnceAsync();

        Assert.Equal(1, deleted);
        using var connectionLease = _server.Service<FastIngest.Storage.Sqlite.SqliteDatabase>().Read();
        var connection = connectionLease.Connection;
        using var count = connection.CreateCommand();
        count.CommandText = $"SELECT (SELECT count(*) FROM projects WHERE id = {key}) + (SELECT count(*) FROM test_runs WHERE project_id = {key});";
        Assert.Equal(0L, (long)count.ExecuteScalar()!);
    }

    [Fact]
    public async Task ProjectTokenNamingAnotherTenantsProjectGets404NotItsOwnRuns()
    {
        var own = await _server.CreateTenantAsync("named-own");
        var other = await _server.CreateTenantAsync("named-other");
        using (var run = await _server.IngestAsync(own.ProjectToken, TestServer.Run("own-run")))
        {
            await Json.ReadAsync(run, HttpStatusCode.Created);
        }

        foreach (var path in new[] { "/v1/runs", "/v1/runs/own-run", "/v1/stats", "/v1/tests/flaky", "/v1/tests/slowest" })
        {
            var separator = path.Contains('?', StringComparison.Ordinal) ? '&' : '?';
            using var foreign = await _server.SendAsync(HttpMethod.Get, $"{path}{separator}project_id={other.ProjectId}", own.ProjectToken);
            var body = await foreign.Content.ReadAsStringAsync();
            Assert.True(foreign.StatusCode == HttpStatusCode.NotFound, $"{path} naming another tenant's project: {(int)foreign.StatusCode} {body}");
            Assert.DoesNotContain("own-run", body, StringComparison.Ordinal);

            using var unknown = await _server.SendAsync(HttpMethod.Get, $"{path}{separator}project_id=no-such-project", own.ProjectToken);
            Assert.True(unknown.StatusCode == HttpStatusCode.NotFound, $"{path} naming an unknown project: {(int)unknown.StatusCode}");

            using var named = await _server.SendAsync(HttpMethod.Get, $"{path}{separator}project_id={own.ProjectId}", own.ProjectToken);
            Assert.True(named.StatusCode == HttpStatusCode.OK, $"{path} naming its own project: {(int)named.StatusCode} {await named.Content.ReadAsStringAsync()}");
        }
    }

    private static async Task AssertUnauthorizedAsync(HttpResponseMessage response, string what)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{what}: expected 401, got {(int)response.StatusCode}: {body}");
    }
}
