using System.Net;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Auth;

/// <summary>
/// Every route x every credential kind x own/foreign tenant, with the status the tenancy rules promise:
/// wrong scope 403, someone else's object 404 (exactly like a missing one), a bad token 401. Revoked tokens and
/// tokens of a deleted project were used (and cached) before their revocation or deletion: 401 everywhere. A
/// deleted project is 404 to every manager, its own org's and the admin included.
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
        RevokedIngest,
        RevokedOrg,
        DeletedProjectIngest,
        DeletedProjectRead,
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
        ListRuns,
        GetRunTests,
        FlakyTests,
        SlowestTests,
        ListTests,
        GetTest,
        TestExecutions,
        Failures,
        ResetFlaky,
        DeletedProjectTokens,
        DeleteDeletedProject,
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
        if (caller is Caller.BadToken or Caller.RevokedIngest or Caller.RevokedOrg or Caller.DeletedProjectIngest or Caller.DeletedProjectRead)
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
            // Every caller names project A; a project token naming a project not its own is 404 like a manager.
            Route.GetRun or Route.ListRuns or Route.GetRunTests or Route.FlakyTests or Route.SlowestTests or Route.ListTests
                or Route.GetTest or Route.TestExecutions or Route.Failures => foreign ? HttpStatusCode.NotFound : HttpStatusCode.OK,
            Route.ResetFlaky => !isManager ? HttpStatusCode.Forbidden : foreign ? HttpStatusCode.NotFound : HttpStatusCode.OK,
            Route.DeletedProjectTokens or Route.DeleteDeletedProject => !isManager ? HttpStatusCode.Forbidden : HttpStatusCode.NotFound,
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
            Caller.RevokedIngest => _world.RevokedIngest,
            Caller.RevokedOrg => _world.RevokedOrg,
            Caller.DeletedProjectIngest => _world.DeletedProjectIngest,
            Caller.DeletedProjectRead => _world.DeletedProjectRead,
            _ => "fii_" + new string('0', 61),
        };
        var unique = $"{route}-{caller}-{Guid.NewGuid():N}";
        var project = $"?project_id={a.ProjectId}";

        using var response = route switch
        {
            Route.CreateOrg => await server.PostAsync("/v1/orgs", token, new { name = unique }),
            Route.CreateProject => await server.PostAsync("/v1/projects", token, new { org_id = a.OrgId, name = unique }),
            Route.CreateToken => await server.PostAsync("/v1/tokens", token, new { project_id = a.ProjectId }),
            Route.ListTokens => await server.SendAsync(HttpMethod.Get, $"/v1/projects/{a.ProjectId}/tokens", token),
            Route.RevokeToken => await server.SendAsync(HttpMethod.Delete, $"/v1/tokens/{await _world.NewVictimTokenIdAsync()}", token),
            Route.Ingest => await server.IngestAsync(token, TestServer.Run(unique)),
            Route.IngestJUnit => await TestCases.JUnitUploads.PostAsync(server, token, "<testsuite><testcase name=\"t\"/></testsuite>", $"run_id={unique}"),
            Route.GetRun => await server.SendAsync(HttpMethod.Get, $"/v1/runs/{TwoTenants.RunInA}{project}", token),
            Route.ListRuns => await server.SendAsync(HttpMethod.Get, $"/v1/runs{project}", token),
            Route.GetRunTests => await server.SendAsync(HttpMethod.Get, $"/v1/runs/{TwoTenants.RunInA}/tests{project}", token),
            Route.FlakyTests => await server.SendAsync(HttpMethod.Get, $"/v1/tests/flaky{project}", token),
            Route.SlowestTests => await server.SendAsync(HttpMethod.Get, $"/v1/tests/slowest{project}", token),
            Route.ListTests => await server.SendAsync(HttpMethod.Get, $"/v1/tests{project}", token),
            Route.GetTest => await server.SendAsync(HttpMethod.Get, $"/v1/tests/{_world.TestInA}{project}", token),
            Route.TestExecutions => await server.SendAsync(HttpMethod.Get, $"/v1/tests/{_world.TestInA}/executions{project}", token),
            Route.Failures => await server.SendAsync(HttpMethod.Get, $"/v1/failures{project}", token),
            Route.ResetFlaky => await server.SendAsync(HttpMethod.Post, $"/v1/tests/{_world.TestInA}/reset-flaky{project}", token),
            Route.DeletedProjectTokens => await server.SendAsync(HttpMethod.Get, $"/v1/projects/{_world.DeletedProjectId}/tokens", token),
            Route.DeleteDeletedProject => await server.SendAsync(HttpMethod.Delete, $"/v1/projects/{_world.DeletedProjectId}", token),
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
            Assert.DoesNotContain(TwoTenants.RunInA, body, StringComparison.Ordinal);
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

        /// <summary>Tokens that worked (and were cached) before they were revoked or their project deleted.</summary>
        public string RevokedIngest { get; private set; } = null!;

        public string RevokedOrg { get; private set; } = null!;

        public string DeletedProjectIngest { get; private set; } = null!;

        public string DeletedProjectRead { get; private set; } = null!;

        public string DeletedProjectId { get; private set; } = null!;

        /// <summary>The id of A's test 'secret-test-name'.</summary>
        public string TestInA { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Server = await TestServer.StartAsync(configure: o => o with
            {
                RateLimits = new FastIngest.RateLimiting.RateLimitOptions { ManagementPerWindow = 10_000, ConfirmPerWindow = 1000 },
            });
            A = await Server.CreateTenantAsync("matrix-a");
            B = await Server.CreateTenantAsync("matrix-b");
            ReadA = await NewTokenAsync(A, "read");
            ReadB = await NewTokenAsync(B, "read");
            var withTests = TestServer.Run(RunInA).Replace("}", ",\"tests\":[{\"name\":\"secret-test-name\",\"status\":\"passed\",\"duration_ms\":1}]}", StringComparison.Ordinal);
            using var run = await Server.IngestAsync(A.ProjectToken, withTests);
            await Json.ReadAsync(run, HttpStatusCode.Created);
            using (var tests = await Server.SendAsync(HttpMethod.Get, $"/v1/runs/{RunInA}/tests?project_id={A.ProjectId}", Server.AdminToken))
            {
                TestInA = (await Json.ReadAsync(tests, HttpStatusCode.OK)).GetProperty("tests")[0].GetProperty("test_id").GetString()!;
            }

            RevokedIngest = await NewTokenAsync(A, "ingest");
            var revokedOrg = await Server.PostAsync("/v1/tokens", Server.AdminToken, new { org_id = A.OrgId, scope = "org" });
            var revokedOrgJson = await Json.ReadAsync(revokedOrg, HttpStatusCode.Created);
            RevokedOrg = revokedOrgJson.GetProperty("token").GetString()!;
            await UseThenAsync(RevokedIngest, $"/v1/tokens/{IdOf(RevokedIngest)}");
            await UseThenAsync(RevokedOrg, $"/v1/tokens/{revokedOrgJson.GetProperty("id").GetString()}");

            // A second project of A, deleted after its tokens were used: they must not outlive it.
            using var doomed = await Server.PostAsync("/v1/projects", A.OrgToken, new { org_id = A.OrgId, name = "matrix-doomed" });
            DeletedProjectId = (await Json.ReadAsync(doomed, HttpStatusCode.Created)).GetProperty("id").GetString()!;
            var doomedTenant = A with { ProjectId = DeletedProjectId };
            DeletedProjectIngest = await NewTokenAsync(doomedTenant, "ingest");
            DeletedProjectRead = await NewTokenAsync(doomedTenant, "read");
            foreach (var token in new[] { DeletedProjectIngest, DeletedProjectRead })
            {
                using var used = await Server.SendAsync(HttpMethod.Get, "/v1/runs", token);
                await Json.ReadAsync(used, HttpStatusCode.OK);
            }

            await Server.ConfirmAndFinishAsync(HttpMethod.Delete, $"/v1/projects/{DeletedProjectId}", A.OrgToken);
        }

        private static string IdOf(string token) => FastIngest.Auth.ApiTokenFormat.IdOf(token).ToString();

        /// <summary>Uses the token once (so it is cached), then revokes it.</summary>
        private async Task UseThenAsync(string token, string revokePath)
        {
            using (var used = await Server.SendAsync(HttpMethod.Get, $"/v1/runs?project_id={A.ProjectId}", token))
            {
                await Json.ReadAsync(used, HttpStatusCode.OK);
            }

            using var revoked = await Server.SendAsync(HttpMethod.Delete, revokePath, Server.AdminToken);
            Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);
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
