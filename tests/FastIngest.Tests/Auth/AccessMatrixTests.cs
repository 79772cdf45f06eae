using System.Net;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Auth;

/// <summary>
/// Every route x every credential kind x own/foreign tenant, with the status the tenancy rules promise:
/// wrong scope 403, someone else's object 404 (exactly like a missing one), a bad token 401.
/// </summary>
public sealed class AccessMatrixTests : IClassFixture<AccessMatrixTests.TwoTenants>
{
    private readonly TwoTenants _world;

    public AccessMatrixTests(TwoTenants world) => _world = world;

    public enum Caller
    {
        Admin,
        OwnOrg,
        ForeignOrg,
        OwnIngest,
        ForeignIngest,
        OwnRead,
        ForeignRead,
        BadToken,
    }

    public enum Route
    {
        CreateOrg,
        CreateProject,
        CreateToken,
        ListTokens,
        RevokeToken,
        Ingest,
        IngestJUnit,
        GetRun,
        GetRunTests,
        FlakyTests,
    }

    public static TheoryData<Route, Caller, HttpStatusCode> Matrix()
    {
        var data = new TheoryData<Route, Caller, HttpStatusCode>();
        foreach (var route in Enum.GetValues<Route>())
        {
            foreach (var caller in Enum.GetValues<Caller>())
            {
                data.Add(route, caller, Expected(route, caller));
            }
        }

        return data;
    }

    /// <summary>The rules, written once as a table rather than derived from the implementation.</summary>
    private static HttpStatusCode Expected(Route route, Caller caller)
    {
        if (caller == Caller.BadToken)
        {
            return HttpStatusCode.Unauthorized;
        }

        var isManager = caller is Caller.Admin or Caller.OwnOrg or Caller.ForeignOrg;
        var foreign = caller is Caller.ForeignOrg or Caller.ForeignIngest or Caller.ForeignRead;
        return route switch
        {
            Route.CreateOrg => caller == Caller.Admin ? HttpStatusCode.Created : HttpStatusCode.Forbidden,
            Route.CreateProject or Route.CreateToken => !isManager ? HttpStatusCode.Forbidden : foreign ? HttpStatusCode.NotFound : HttpStatusCode.Created,
            Route.ListTokens => !isManager ? HttpStatusCode.Forbidden : foreign ? HttpStatusCode.NotFound : HttpStatusCode.OK,
            Route.RevokeToken => !isManager ? HttpStatusCode.Forbidden : foreign ? HttpStatusCode.NotFound : HttpStatusCode.NoContent,
            Route.Ingest or Route.IngestJUnit => caller is Caller.OwnIngest or Caller.ForeignIngest ? HttpStatusCode.Created : HttpStatusCode.Forbidden,
            Route.GetRun or Route.GetRunTests => foreign ? HttpStatusCode.NotFound : HttpStatusCode.OK,
            // A project token always reads its own project, so a foreign one sees its own (empty) list.
            Route.FlakyTests => caller == Caller.ForeignOrg ? HttpStatusCode.NotFound : HttpStatusCode.OK,
            _ => throw new ArgumentOutOfRangeException(nameof(route)),
        };
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task RouteAnswersEachCallerAsTheTenancyRulesSay(Route route, Caller caller, HttpStatusCode expected)
    {
        var server = _world.Server;
        var a = _world.A;
        var token = caller switch
        {
            Caller.Admin => server.AdminToken,
            Caller.OwnOrg => a.OrgToken,
            Caller.ForeignOrg => _world.B.OrgToken,
            Caller.OwnIngest => a.ProjectToken,
            Caller.ForeignIngest => _world.B.ProjectToken,
            Caller.OwnRead => _world.ReadA,
            Caller.ForeignRead => _world.ReadB,
            _ => "fii_" + new string('0', 61),
        };
        var unique = $"{route}-{caller}-{Guid.NewGuid():N}";
        var asManager = caller is Caller.Admin or Caller.OwnOrg or Caller.ForeignOrg ? $"?project_id={a.ProjectId}" : "";

        using var response = route switch
        {
            Route.CreateOrg => await server.PostAsync("/v1/orgs", token, new { name = unique }),
            Route.CreateProject => await server.PostAsync("/v1/projects", token, new { org_id = a.OrgId, name = unique }),
            Route.CreateToken => await server.PostAsync("/v1/tokens", token, new { project_id = a.ProjectId }),
            Route.ListTokens => await server.SendAsync(HttpMethod.Get, $"/v1/projects/{a.ProjectId}/tokens", token),
            Route.RevokeToken => await server.SendAsync(HttpMethod.Delete, $"/v1/tokens/{await _world.NewVictimTokenIdAsync()}", token),
            Route.Ingest => await server.IngestAsync(token, TestServer.Run(unique)),
            Route.IngestJUnit => await TestCases.JUnitUploads.PostAsync(server, token, "<testsuite><testcase name=\"t\"/></testsuite>", $"run_id={unique}"),
            Route.GetRun => await server.SendAsync(HttpMethod.Get, $"/v1/runs/{TwoTenants.RunInA}{asManager}", token),
            Route.GetRunTests => await server.SendAsync(HttpMethod.Get, $"/v1/runs/{TwoTenants.RunInA}/tests{asManager}", token),
            Route.FlakyTests => await server.SendAsync(HttpMethod.Get, $"/v1/tests/flaky{asManager}", token),
            _ => throw new ArgumentOutOfRangeException(nameof(route)),
        };

        var body = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"{route} as {caller}: expected {(int)expected}, got {(int)response.StatusCode}: {body}");
        if ((int)expected >= 400)
        {
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            // An error may echo what the caller asked for, never the object's data.
            Assert.DoesNotContain("\"duration_ms\"", body, StringComparison.Ordinal);
            Assert.DoesNotContain("\"tokens\"", body, StringComparison.Ordinal);
            Assert.DoesNotContain("secret-test-name", body, StringComparison.Ordinal);
        }
    }

    public sealed class TwoTenants : IAsyncLifetime
    {
        public const string RunInA = "matrix-run-in-a";

        public TestServer Server { get; private set; } = null!;

        public Tenant A { get; private set; } = null!;

        public Tenant B { get; private set; } = null!;

        public string ReadA { get; private set; } = null!;

        public string ReadB { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Server = await TestServer.StartAsync();
            A = await Server.CreateTenantAsync("matrix-a");
            B = await Server.CreateTenantAsync("matrix-b");
            ReadA = await NewTokenAsync(A, "read");
            ReadB = await NewTokenAsync(B, "read");
            var withTests = TestServer.Run(RunInA).Replace("}", ",\"tests\":[{\"name\":\"secret-test-name\",\"status\":\"passed\",\"duration_ms\":1}]}", StringComparison.Ordinal);
            using var run = await Server.IngestAsync(A.ProjectToken, withTests);
            await Json.ReadAsync(run, HttpStatusCode.Created);
        }

        public async Task<string> NewVictimTokenIdAsync()
        {
            using var response = await Server.PostAsync("/v1/tokens", Server.AdminToken, new { project_id = A.ProjectId, name = "victim" });
            return (await Json.ReadAsync(response, HttpStatusCode.Created)).GetProperty("id").GetString()!;
        }

        public async Task DisposeAsync() => await Server.DisposeAsync();

        private async Task<string> NewTokenAsync(Tenant tenant, string scope)
        {
            using var response = await Server.PostAsync("/v1/tokens", tenant.OrgToken, new { project_id = tenant.ProjectId, scope });
            return (await Json.ReadAsync(response, HttpStatusCode.Created)).GetProperty("token").GetString()!;
        }
    }
}
