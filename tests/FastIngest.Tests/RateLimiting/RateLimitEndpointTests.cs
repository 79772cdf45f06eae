using System.Net;
using System.Text.RegularExpressions;
using FastIngest.Auth;
using FastIngest.RateLimiting;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.RateLimiting;

public sealed partial class RateLimitEndpointTests : IAsyncLifetime
{
    private const int ReadBudget = 5;
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(configure: o => o with
    {
        RateLimits = new RateLimitOptions { ReadPerWindow = ReadBudget, AuthFailuresBeforeBlock = 10 },
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task OneMoreThanTheBudgetInsideOneWindowGivesExactlyOne429WithRetryAfterTheWindow()
    {
        var tenant = await _server.CreateTenantAsync("budget");
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (var i = 0; i < ReadBudget + 1; i++)
        {
            var response = await _server.SendAsync(HttpMethod.Get, "/v1/runs/none", tenant.ProjectToken);
            statuses.Add(response.StatusCode);
            Assert.Matches(PolicyHeader(), response.Headers.GetValues("RateLimit-Policy").Single());
            Assert.Matches(LimitHeader(), response.Headers.GetValues("RateLimit").Single());
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                limited = response;
            }
        }

        Assert.Equal(ReadBudget, statuses.Count(s => s == HttpStatusCode.NotFound));
        Assert.Equal(1, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
        await Json.ReadProblemAsync(limited!, HttpStatusCode.TooManyRequests);
        Assert.True(limited!.Headers.RetryAfter!.Delta >= TimeSpan.FromSeconds(60) - TimeSpan.FromSeconds(5));
        Assert.Equal("\"read\";r=0;t=60", limited.Headers.GetValues("RateLimit").Single());
    }

    [Fact]
    public async Task BudgetsArePerCredential()
    {
        var a = await _server.CreateTenantAsync("per-credential-a");
        var b = await _server.CreateTenantAsync("per-credential-b");
        for (var i = 0; i < ReadBudget + 2; i++)
        {
            (await _server.SendAsync(HttpMethod.Get, "/v1/runs/none", a.ProjectToken)).Dispose();
        }

        using var other = await _server.SendAsync(HttpMethod.Get, "/v1/runs/none", b.ProjectToken);
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
    }

    [Fact]
    public async Task UnauthenticatedFloodsDoNotSpendATenantsBudget()
    {
        var tenant = await _server.CreateTenantAsync("flood");
        using (var warm = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("warm"))) // cached; spends no read budget
        {
            Assert.Equal(HttpStatusCode.Created, warm.StatusCode);
        }

        var forged = tenant.ProjectToken[..^1] + (tenant.ProjectToken[^1] == 'a' ? 'b' : 'a'); // bad checksum
        for (var i = 0; i < 50; i++)
        {
            (await _server.SendAsync(HttpMethod.Get, "/v1/runs/none", forged)).Dispose();
        }

        for (var i = 0; i < ReadBudget; i++)
        {
            using var response = await _server.SendAsync(HttpMethod.Get, "/v1/runs/none", tenant.ProjectToken);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }
    }

    [Fact]
    public async Task FailuresThatCostNoArgon2NeverBlockAnAddresssNextFirstUse()
    {
        var tenant = await _server.CreateTenantAsync("nat-neighbour");
        var badChecksum = tenant.ProjectToken[..^1] + (tenant.ProjectToken[^1] == 'a' ? 'b' : 'a');
        for (var i = 0; i < 60; i++)
        {
            (await _server.IngestAsync(badChecksum, TestServer.Run("guess"))).Dispose();
            (await _server.IngestAsync("fii_malformed-" + i, TestServer.Run("guess"))).Dispose();
            (await _server.IngestAsync(ApiTokenFormat.Generate(TokenScope.Ingest).Token, TestServer.Run("guess"))).Dispose(); // unknown id
        }

        // The same address (every test client is 127.0.0.1), a token never used before: one job's mistakes must
        // not lock out its neighbours behind the same NAT.
        using var firstUse = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("neighbour"));
        await Json.ReadAsync(firstUse, HttpStatusCode.Created);
    }

    [Fact]
    public async Task WrongSecretsForOneTokenIdBlockOnlyThatIdAndNeverItsCachedHolder()
    {
        var tenant = await _server.CreateTenantAsync("guessed");
        var other = await _server.CreateTenantAsync("not-guessed");
        using (var warm = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("warm")))
        {
            Assert.Equal(HttpStatusCode.Created, warm.StatusCode);
        }

        // Guesses that reuse the real id with random secrets: each one costs an Argon2 run.
        for (var i = 0; i < 10; i++)
        {
            using var guess = await _server.IngestAsync(ForgedTokens.WithOtherSecret(tenant.ProjectToken, i), TestServer.Run("guess"));
            Assert.Equal(HttpStatusCode.Unauthorized, guess.StatusCode);
        }

        using (var blocked = await _server.IngestAsync(ForgedTokens.WithOtherSecret(tenant.ProjectToken, 99), TestServer.Run("guess")))
        {
            await Json.ReadProblemAsync(blocked, HttpStatusCode.TooManyRequests);
            Assert.NotNull(blocked.Headers.RetryAfter);
        }

        using var cached = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("still-works"));
        Assert.Equal(HttpStatusCode.Created, cached.StatusCode);
        using var neighbour = await _server.IngestAsync(other.ProjectToken, TestServer.Run("first-use"));
        Assert.Equal(HttpStatusCode.Created, neighbour.StatusCode);
    }

    [Fact]
    public async Task ATenantGuessingItsOwnIdsBehindOneNatNeverBlocksItsNeighboursFirstUse()
    {
        var guesser = await _server.CreateTenantAsync("nat-guesser");
        var neighbour = await _server.CreateTenantAsync("nat-victim");
        var ids = new List<string> { guesser.ProjectToken };
        for (var i = 0; i < 11; i++)
        {
            using var created = await _server.PostAsync("/v1/tokens", guesser.OrgToken, new { project_id = guesser.ProjectId });
            ids.Add((await Json.ReadAsync(created, HttpStatusCode.Created)).GetProperty("token").GetString()!);
        }

        // 12 ids x 11 wrong secrets from the one address every test client shares (127.0.0.1).
        foreach (var token in ids)
        {
            for (var i = 0; i < 11; i++)
            {
                (await _server.IngestAsync(ForgedTokens.WithOtherSecret(token, i), TestServer.Run("guess"))).Dispose();
            }
        }

        using var firstUse = await _server.IngestAsync(neighbour.ProjectToken, TestServer.Run("neighbour-first-use"));
        await Json.ReadAsync(firstUse, HttpStatusCode.Created);
    }

    [Fact]
    public async Task SomeoneGuessingATokensIdFromElsewhereNeverBlocksItsHoldersFirstUse()
    {
        // Behind a trusted proxy the client network comes from X-Forwarded-For: two networks over one socket.
        await using var server = await TestServer.StartAsync(configure: o => o with
        {
            TrustedProxies = [System.Net.IPNetwork.Parse("127.0.0.0/8")],
            RateLimits = new RateLimitOptions { AuthFailuresBeforeBlock = 10 },
        });
        var tenant = await server.CreateTenantAsync("guessed-elsewhere");
        async Task<HttpStatusCode> IngestFrom(string client, string token, string runId)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest")
            {
                Content = new StringContent(TestServer.Run(runId), System.Text.Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new("Bearer", token);
            request.Headers.Add("X-Forwarded-For", client);
            using var response = await server.Client.SendAsync(request);
            return response.StatusCode;
        }

        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, await IngestFrom("203.0.113.50", ForgedTokens.WithOtherSecret(tenant.ProjectToken, i), "guess"));
        }

        Assert.Equal(HttpStatusCode.TooManyRequests, await IngestFrom("203.0.113.51", ForgedTokens.WithOtherSecret(tenant.ProjectToken, 99), "guess"));
        // The holder, on another network, uses the token for the first time (nothing cached): not blocked.
        Assert.Equal(HttpStatusCode.Created, await IngestFrom("198.51.100.7", tenant.ProjectToken, "holder"));
    }

    [GeneratedRegex("^\"(ingest|read|management|confirm)\";q=[0-9]+;w=[0-9]+$")]
    private static partial Regex PolicyHeader();

    [GeneratedRegex("^\"(ingest|read|management|confirm)\";r=[0-9]+;t=[0-9]+$")]
    private static partial Regex LimitHeader();
}
