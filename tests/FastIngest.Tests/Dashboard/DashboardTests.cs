using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Dashboard;

/// <summary>The dashboard over HTTP: sessions, headers, tenancy on every page and encoding of hostile uploads.</summary>
public abstract partial class DashboardTests : IAsyncLifetime
{
    protected abstract Task<TestServer> StartServerAsync();

    internal const string HostileName = "<script>window.__xss=1</script>\"><img src=x onerror=\"window.__xss=2\">\u202Egnp.exe";
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await StartServerAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task SignInTurnsATokenIntoAnHttpOnlyStrictSessionCookieThatHoldsNoPartOfTheToken()
    {
        var tenant = await _server.CreateTenantAsync("ui-signin");
        using var browser = new Browser(_server);

        using var signedIn = await browser.SignInAsync(tenant.OrgToken);

        Assert.True(signedIn.StatusCode == HttpStatusCode.SeeOther, $"sign-in answered {(int)signedIn.StatusCode}");
        var cookie = signedIn.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("fastingest_session=", StringComparison.Ordinal));
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        var value = cookie.Split(';')[0]["fastingest_session=".Length..];
        Assert.DoesNotContain(value, tenant.OrgToken, StringComparison.Ordinal);
        Assert.DoesNotContain(tenant.OrgToken[^20..], cookie, StringComparison.Ordinal);

        var home = await browser.GetPageAsync("/ui");
        Assert.Contains(tenant.ProjectId, home, StringComparison.Ordinal);
        Assert.DoesNotContain(tenant.OrgToken, home, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SignInWithoutItsAntiForgeryValueOrWithABadTokenStartsNoSession(bool badToken)
    {
        var tenant = await _server.CreateTenantAsync($"ui-refused-{badToken}");
        using var browser = new Browser(_server);
        using var refused = badToken
            ? await browser.SignInAsync("fii_" + new string('x', 61))
            : await browser.SignInAsync(tenant.OrgToken, antiForgery: "forged");

        Assert.True(refused.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.BadRequest, $"answered {(int)refused.StatusCode}");
        Assert.False(refused.Headers.TryGetValues("Set-Cookie", out var cookies) && cookies.Any(c => c.StartsWith("fastingest_session=", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task EveryPageCarriesAStrictContentSecurityPolicyAndTheStylesheetIsCachedByItsHash()
    {
        var tenant = await _server.CreateTenantAsync("ui-headers");
        using var browser = new Browser(_server);
        (await browser.SignInAsync(tenant.ProjectToken)).Dispose();

        using var page = await browser.GetAsync($"/ui/projects/{tenant.ProjectId}");
        var html = await page.Content.ReadAsStringAsync();

        Assert.True(page.StatusCode == HttpStatusCode.OK, $"{(int)page.StatusCode}: {html}");
        var csp = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("default-src 'none'", csp, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe", csp, StringComparison.Ordinal);
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("no-referrer", page.Headers.GetValues("Referrer-Policy").Single());
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);

        var css = StylesheetPath().Match(html).Groups[1].Value;
        using var asset = await browser.GetAsync(css);
        Assert.Equal(HttpStatusCode.OK, asset.StatusCode);
        Assert.Contains("immutable", asset.Headers.CacheControl!.ToString(), StringComparison.Ordinal);
        using var stale = await browser.GetAsync("/ui/assets/dashboard.0000000000000000.css");
        Assert.Equal(HttpStatusCode.NotFound, stale.StatusCode);
    }

    [Fact]
    public async Task ASessionSeesOnlyWhatItsTokenMayReadEvenByGuessingUrls()
    {
        var mine = await _server.CreateTenantAsync("ui-mine");
        var theirs = await _server.CreateTenantAsync("ui-theirs");
        await IngestAsync(theirs, "their-run", "their-secret-test", "their secret message");
        var theirTest = await TestIdAsync(theirs, "their-secret-test");
        using var browser = new Browser(_server);
        (await browser.SignInAsync(mine.OrgToken)).Dispose();

        foreach (var path in new[]
        {
            $"/ui/projects/{theirs.ProjectId}",
            $"/ui/projects/{theirs.ProjectId}/runs",
            $"/ui/projects/{theirs.ProjectId}/runs/their-run",
            $"/ui/projects/{theirs.ProjectId}/tests?state=broken",
            $"/ui/projects/{theirs.ProjectId}/tests/{theirTest}",
            $"/ui/projects/{theirs.ProjectId}/failures",
            $"/ui/projects/{mine.ProjectId}/runs/their-run",
            $"/ui/projects/{mine.ProjectId}/tests/{theirTest}",
        })
        {
            using var response = await browser.GetAsync(path);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{path}: {(int)response.StatusCode}");
            Assert.DoesNotContain("secret", body, StringComparison.Ordinal);
        }

        Assert.DoesNotContain(theirs.ProjectId, await browser.GetPageAsync("/ui"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RevokingTheTokenEndsItsSessionsAndSignOutNeedsTheSessionsAntiForgeryValue()
    {
        var tenant = await _server.CreateTenantAsync("ui-revoke");
        using var created = await _server.PostAsync("/v1/tokens", tenant.OrgToken, new { project_id = tenant.ProjectId, scope = "read" });
        var read = await Json.ReadAsync(created, HttpStatusCode.Created);
        using var browser = new Browser(_server);
        (await browser.SignInAsync(read.GetProperty("token").GetString()!)).Dispose();
        Assert.Contains("Sign out", await browser.GetPageAsync($"/ui/projects/{tenant.ProjectId}"), StringComparison.Ordinal);

        using (var forged = await browser.PostFormAsync("/ui/sign-out", [new("af", "forged")]))
        {
            Assert.Equal(HttpStatusCode.SeeOther, forged.StatusCode);
        }

        Assert.Contains("Sign out", await browser.GetPageAsync($"/ui/projects/{tenant.ProjectId}"), StringComparison.Ordinal); // still signed in
        using (var revoked = await _server.SendAsync(HttpMethod.Delete, $"/v1/tokens/{read.GetProperty("id").GetString()}", tenant.OrgToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);
        }

        using var after = await browser.GetAsync($"/ui/projects/{tenant.ProjectId}");
        Assert.True(after.StatusCode == HttpStatusCode.SeeOther && after.Headers.Location!.ToString() == "/ui",
            $"a revoked token's session answered {(int)after.StatusCode}");
    }

    [Fact]
    public async Task ATokenKeepsAtMostTwentySessionsAndItsNextSignInEndsItsOldestNotAnotherTokens()
    {
        var tenant = await _server.CreateTenantAsync("ui-sessions");
        using var other = new Browser(_server);
        (await other.SignInAsync(tenant.OrgToken)).Dispose();
        using var first = new Browser(_server);
        (await first.SignInAsync(tenant.ProjectToken)).Dispose();
        for (var i = 0; i < FastIngest.Dashboard.DashboardSessions.MaxSessionsPerToken; i++)
        {
            using var again = new Browser(_server);
            (await again.SignInAsync(tenant.ProjectToken)).Dispose();
        }

        using (var oldest = await first.GetAsync($"/ui/projects/{tenant.ProjectId}"))
        {
            Assert.True(oldest.StatusCode == HttpStatusCode.SeeOther, $"the token's oldest session answered {(int)oldest.StatusCode}");
        }

        Assert.Contains("Sign out", await other.GetPageAsync($"/ui/projects/{tenant.ProjectId}"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("javascript:alert(1)")]
    [InlineData("data:text/html,x")]
    [InlineData("//evil.example/x")]
    [InlineData("ftp://ci.example/x")]
    public async Task OnlyAnHttpBuildUrlIsStoredAndShownAsTheRunsCiLink(string hostile)
    {
        var tenant = await _server.CreateTenantAsync("ui-build-url-" + Math.Abs(hostile.GetHashCode(StringComparison.Ordinal)));
        using (var refused = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("bad-url").Replace("}", $",\"build_url\":\"{hostile}\"}}", StringComparison.Ordinal)))
        {
            var problem = await Json.ReadProblemAsync(refused, HttpStatusCode.BadRequest);
            Assert.Contains("build_url", problem.ToString(), StringComparison.Ordinal);
        }

        using (var stored = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("good-url").Replace("}", ",\"build_url\":\"https://ci.example/builds/7?x=1&y=2\"}", StringComparison.Ordinal)))
        {
            await Json.ReadAsync(stored, HttpStatusCode.Created);
        }

        using var browser = new Browser(_server);
        (await browser.SignInAsync(tenant.ProjectToken)).Dispose();
        var page = await browser.GetPageAsync($"/ui/projects/{tenant.ProjectId}/runs/good-url");
        Assert.Contains("href=\"https://ci.example/builds/7?x=1&amp;y=2\"", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASignInThatIsNotAFormIsA400NotA500()
    {
        using var response = await _server.Client.PostAsync("/ui/sign-in", new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task ARunWhoseIdHasSlashesIsReachedByItsLink()
    {
        var tenant = await _server.CreateTenantAsync("ui-slashes");
        await IngestAsync(tenant, "ci/1234/attempt-2", "t", "m");
        using var browser = new Browser(_server);
        (await browser.SignInAsync(tenant.ProjectToken)).Dispose();

        var runs = await browser.GetPageAsync($"/ui/projects/{tenant.ProjectId}/runs");
        var link = Regex.Match(runs, "href=\"([^\"]+attempt-2)\"").Groups[1].Value;

        Assert.Contains("Run ci/1234/attempt-2", await browser.GetPageAsync(link), StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostileNamesMessagesAndBranchesAreTextOnEveryPage()
    {
        var tenant = await _server.CreateTenantAsync("ui-hostile");
        await IngestAsync(tenant, "hostile-run", HostileName, HostileName, branch: "\"><script>x()</script>");
        var testId = await TestIdAsync(tenant, HostileName);
        using var browser = new Browser(_server);
        (await browser.SignInAsync(tenant.ProjectToken)).Dispose();

        foreach (var path in new[]
        {
            $"/ui/projects/{tenant.ProjectId}", $"/ui/projects/{tenant.ProjectId}/runs", $"/ui/projects/{tenant.ProjectId}/runs/hostile-run",
            $"/ui/projects/{tenant.ProjectId}/tests?state=broken", $"/ui/projects/{tenant.ProjectId}/tests/{testId}", $"/ui/projects/{tenant.ProjectId}/failures",
        })
        {
            var html = await browser.GetPageAsync(path);
            Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("<img", html, StringComparison.OrdinalIgnoreCase);
            Assert.True(html.Length < 100 * 1024, $"{path} is {html.Length} characters");
        }

        var runPage = await browser.GetPageAsync($"/ui/projects/{tenant.ProjectId}/runs/hostile-run");
        Assert.Contains("&lt;script&gt;", runPage, StringComparison.Ordinal);
        Assert.Contains("202E]gnp.exe", runPage, StringComparison.Ordinal); // a direction override is shown ([U+202E]), not obeyed
        Assert.DoesNotContain("\u202E", runPage, StringComparison.Ordinal);
        Assert.DoesNotContain("&#x202E;", runPage, StringComparison.OrdinalIgnoreCase);
    }

    internal static async Task IngestAsync(TestServer server, Tenant tenant, string runId, string testName, string message, string? branch = null, int daysAgo = 1)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["run_id"] = runId,
            ["status"] = "failed",
            ["duration_ms"] = 1500,
            ["timestamp"] = DateTimeOffset.UtcNow.AddDays(-daysAgo).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture),
            ["branch"] = branch,
            ["commit_sha"] = "abcdef1",
            ["tests"] = new object[]
            {
                new { suite = "Suite <b>", name = testName, status = "failed", duration_ms = 20, failure_message = message },
                new { suite = "Suite", name = "steady", status = "passed", duration_ms = 5 },
            },
        });
        using var response = await server.IngestAsync(tenant.ProjectToken, body);
        await Json.ReadAsync(response, HttpStatusCode.Created);
    }

    private Task IngestAsync(Tenant tenant, string runId, string testName, string message, string? branch = null) =>
        IngestAsync(_server, tenant, runId, testName, message, branch);

    internal static async Task<string> TestIdAsync(TestServer server, Tenant tenant, string name)
    {
        using var response = await server.SendAsync(HttpMethod.Get, "/v1/tests?window=30d", tenant.ProjectToken);
        var tests = (await Json.ReadAsync(response, HttpStatusCode.OK)).GetProperty("tests");
        return tests.EnumerateArray().Single(t => t.GetProperty("name").GetString() == name).GetProperty("test_id").GetString()!;
    }

    private Task<string> TestIdAsync(Tenant tenant, string name) => TestIdAsync(_server, tenant, name);

    [GeneratedRegex("href=\"(/ui/assets/[^\"]+)\"")]
    private static partial Regex StylesheetPath();

    /// <summary>A cookie-keeping client that does not follow redirects, so each answer can be checked as sent.</summary>
    internal sealed class Browser : IDisposable
    {
        private readonly HttpClient _client;
        private readonly CookieContainer _cookies = new();

        public Browser(TestServer server) =>
            _client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = _cookies })
            {
                BaseAddress = server.Client.BaseAddress,
            };

        /// <summary>Signs in as a person would: a 503 (every hashing slot busy on a loaded machine) is tried again.</summary>
        public async Task<HttpResponseMessage> SignInAsync(string token, string? antiForgery = null)
        {
            for (var attempt = 1; ; attempt++)
            {
                var page = await GetPageAsync("/ui");
                var expected = Regex.Match(page, "name=\"af\" value=\"([^\"]+)\"").Groups[1].Value;
                var response = await PostFormAsync("/ui/sign-in", [new("af", antiForgery ?? expected), new("token", token)]);
                if (response.StatusCode != HttpStatusCode.ServiceUnavailable || attempt == 5)
                {
                    return response;
                }

                response.Dispose();
                await Task.Delay(200);
            }
        }

        public Task<HttpResponseMessage> GetAsync(string path) => _client.GetAsync(path);

        public async Task<string> GetPageAsync(string path)
        {
            using var response = await _client.GetAsync(path);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {path}: {(int)response.StatusCode} {body}");
            return body;
        }

        public Task<HttpResponseMessage> PostFormAsync(string path, KeyValuePair<string, string>[] fields) =>
            _client.PostAsync(path, new FormUrlEncodedContent(fields));

        public void Dispose() => _client.Dispose();
    }
}

public sealed class SqliteDashboardTests : DashboardTests
{
    protected override Task<TestServer> StartServerAsync() => TestServer.StartAsync();
}

public sealed class PostgresDashboardTests : DashboardTests
{
    protected override async Task<TestServer> StartServerAsync() => await TestServer.StartAsync(postgres: await PostgresCluster.CreateDatabaseAsync("dashboard"));
}
