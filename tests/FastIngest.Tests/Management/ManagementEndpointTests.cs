using System.Net;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Management;

public abstract class ManagementEndpointTests : IAsyncLifetime
{
    protected abstract Task<TestServer> StartServerAsync();

    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await StartServerAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task CreateOrgReturns201WithIdNameCreatedAtAndAnOrgTokenShownOnce()
    {
        using var response = await _server.PostAsync("/v1/orgs", _server.AdminToken, new { name = "Acme Corp" });
        var org = await Json.ReadAsync(response, HttpStatusCode.Created);

        Assert.Equal("Acme Corp", org.GetProperty("name").GetString());
        Assert.True(Guid.TryParse(org.GetProperty("id").GetString(), out _));
        Assert.EndsWith("Z", org.GetProperty("created_at").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("fio_", org.GetProperty("token").GetProperty("token").GetString(), StringComparison.Ordinal);
        Assert.Equal("org", org.GetProperty("token").GetProperty("scope").GetString());
    }

    [Fact]
    public async Task DuplicateOrgNameReturns409()
    {
        using var first = await _server.PostAsync("/v1/orgs", _server.AdminToken, new { name = "Twice" });
        await Json.ReadAsync(first, HttpStatusCode.Created);
        using var second = await _server.PostAsync("/v1/orgs", _server.AdminToken, new { name = "Twice" });
        await Json.ReadProblemAsync(second, HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task CreateOrgValidatesEveryFieldAtOnce()
    {
        using var response = await _server.SendAsync(HttpMethod.Post, "/v1/orgs", _server.AdminToken, """{"nmae":"typo","extra":1}""");
        var problem = await Json.ReadProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal(["extra", "name", "nmae"], Json.ErrorFields(problem).Order());
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("{\"name\": 5}")]
    [InlineData("{\"name\": \"\"}")]
    [InlineData("{\"name\": \"a\\u0000b\"}")]
    public async Task BadOrgBodiesReturn400(string body)
    {
        using var response = await _server.SendAsync(HttpMethod.Post, "/v1/orgs", _server.AdminToken, body);
        await Json.ReadProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task WrongContentTypeReturns415()
    {
        using var response = await _server.SendAsync(HttpMethod.Post, "/v1/orgs", _server.AdminToken, """{"name":"x"}""", "text/plain");
        await Json.ReadProblemAsync(response, HttpStatusCode.UnsupportedMediaType);
    }

    [Fact]
    public async Task CreateProjectInUnknownOrgReturns404()
    {
        using var response = await _server.PostAsync("/v1/projects", _server.AdminToken, new { org_id = Guid.NewGuid().ToString(), name = "p" });
        await Json.ReadProblemAsync(response, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task DuplicateProjectNameInOneOrgReturns409ButTheSameNameInAnotherOrgIsFine()
    {
        var a = await _server.CreateTenantAsync("dup-a");
        var b = await _server.CreateTenantAsync("dup-b");

        using var again = await _server.PostAsync("/v1/projects", a.OrgToken, new { org_id = a.OrgId, name = "dup-a-project" });
        await Json.ReadProblemAsync(again, HttpStatusCode.Conflict);
        using var other = await _server.PostAsync("/v1/projects", b.OrgToken, new { org_id = b.OrgId, name = "dup-a-project" });
        await Json.ReadAsync(other, HttpStatusCode.Created);
    }

    [Fact]
    public async Task CreateTokenReturnsTheRawTokenOnceAndListingNeverShowsASecret()
    {
        var tenant = await _server.CreateTenantAsync("listing");
        using var created = await _server.PostAsync("/v1/tokens", tenant.OrgToken,
            new { project_id = tenant.ProjectId, scope = "read", name = "dashboard", expires_in = 3600 });
        var token = await Json.ReadAsync(created, HttpStatusCode.Created);
        var raw = token.GetProperty("token").GetString()!;
        Assert.StartsWith("fir_", raw, StringComparison.Ordinal);
        Assert.NotEqual(JsonValueKindNull, token.GetProperty("expires_at").ValueKind);

        using var list = await _server.SendAsync(HttpMethod.Get, $"/v1/projects/{tenant.ProjectId}/tokens", tenant.OrgToken);
        var listText = await list.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        Assert.DoesNotContain(raw, listText, StringComparison.Ordinal);
        Assert.DoesNotContain(raw[16..^6], listText, StringComparison.Ordinal); // the secret part
        Assert.DoesNotContain("argon2", listText, StringComparison.Ordinal);
        Assert.Contains("\"dashboard\"", listText, StringComparison.Ordinal);
        Assert.Contains(tenant.ProjectTokenId, listText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LastUsedAtAppearsOnceATokenHasBeenUsed()
    {
        var tenant = await _server.CreateTenantAsync("last-used");
        using (var ingest = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("lu-1")))
        {
            await Json.ReadAsync(ingest, HttpStatusCode.Created);
        }

        using var list = await _server.SendAsync(HttpMethod.Get, $"/v1/projects/{tenant.ProjectId}/tokens", tenant.OrgToken);
        var tokens = (await Json.ReadAsync(list, HttpStatusCode.OK)).GetProperty("tokens").EnumerateArray().ToList();
        var used = Assert.Single(tokens, t => t.GetProperty("id").GetString() == tenant.ProjectTokenId);
        Assert.NotEqual(JsonValueKindNull, used.GetProperty("last_used_at").ValueKind);
    }

    [Fact]
    public async Task TokenScopeMustBeKnownAndOrgTokensNeedAnOrg()
    {
        var tenant = await _server.CreateTenantAsync("scopes");
        using var bad = await _server.PostAsync("/v1/tokens", tenant.OrgToken, new { project_id = tenant.ProjectId, scope = "superuser" });
        Assert.Contains("scope", Json.ErrorFields(await Json.ReadProblemAsync(bad, HttpStatusCode.BadRequest)));

        using var admin = await _server.PostAsync("/v1/tokens", _server.AdminToken, new { project_id = tenant.ProjectId, scope = "admin" });
        Assert.Contains("scope", Json.ErrorFields(await Json.ReadProblemAsync(admin, HttpStatusCode.BadRequest)));

        using var orgToken = await _server.PostAsync("/v1/tokens", _server.AdminToken, new { org_id = tenant.OrgId, scope = "org" });
        Assert.StartsWith("fio_", (await Json.ReadAsync(orgToken, HttpStatusCode.Created)).GetProperty("token").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SeedUnversionedPathsAreAliases()
    {
        using var org = await _server.PostAsync("/orgs", _server.AdminToken, new { name = "Seed Corp" });
        var orgId = (await Json.ReadAsync(org, HttpStatusCode.Created)).GetProperty("id").GetString();
        using var project = await _server.PostAsync("/projects", _server.AdminToken, new { org_id = orgId, name = "Test Project" });
        var projectId = (await Json.ReadAsync(project, HttpStatusCode.Created)).GetProperty("id").GetString();
        using var token = await _server.PostAsync("/tokens", _server.AdminToken, new { project_id = projectId });
        var raw = (await Json.ReadAsync(token, HttpStatusCode.Created)).GetProperty("token").GetString()!;
        using var ingest = await _server.SendAsync(HttpMethod.Post, "/ingest", raw,
            """{"run_id": "build-123", "status": "passed", "duration_ms": 5000, "timestamp": "2026-01-12T10:00:00Z"}""");
        await Json.ReadAsync(ingest, HttpStatusCode.Created);
    }

    private const System.Text.Json.JsonValueKind JsonValueKindNull = System.Text.Json.JsonValueKind.Null;
}

public sealed class SqliteManagementEndpointTests : ManagementEndpointTests
{
    protected override Task<TestServer> StartServerAsync() => TestServer.StartAsync();
}

public sealed class PostgresManagementEndpointTests : ManagementEndpointTests
{
    protected override async Task<TestServer> StartServerAsync() => await TestServer.StartAsync(postgres: await PostgresCluster.CreateDatabaseAsync("management"));
}
