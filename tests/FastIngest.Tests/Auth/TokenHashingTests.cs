using System.Net;
using FastIngest.Auth;
using FastIngest.Storage;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Auth;

/// <summary>Argon2id parameters sized for 256-bit secrets: old hashes keep working and move to the new ones.</summary>
public sealed class TokenHashingTests
{
    [Fact]
    public async Task TokenHashedWithPasswordGradeParametersStillWorksAndIsRehashedOnItsNextUse()
    {
        var dir = Directory.CreateTempSubdirectory("fastingest-rehash-").FullName;
        var admin = ApiTokenFormat.Generate(TokenScope.Admin).Token;
        Tenant tenant;
        await using (var server = await TestServer.StartAsync(dir, admin))
        {
            tenant = await server.CreateTenantAsync("rehash");
            var store = server.Service<ITenantStore>();
            var current = (await store.FindTokenAsync(tenant.ProjectTokenId))!.SecretHash;
            // What every token stored before this change looks like (OWASP's password parameters).
            var old = new SecretHasher(19 * 1024, 2).Hash(ApiTokenFormat.SecretOf(tenant.ProjectToken));
            await store.ReplaceSecretHashAsync(tenant.ProjectTokenId, current, old);
            Assert.StartsWith("$argon2id$v=19$m=19456,t=2,p=1$", (await store.FindTokenAsync(tenant.ProjectTokenId))!.SecretHash, StringComparison.Ordinal);
        }

        await using (var restarted = await TestServer.StartAsync(dir, admin))
        {
            using var used = await restarted.IngestAsync(tenant.ProjectToken, TestServer.Run("after-upgrade"));
            await Json.ReadAsync(used, HttpStatusCode.Created);
            // The rehash is written after the request, not before its answer: wait for it (bounded).
            var today = $"$argon2id$v=19$m={SecretHasher.MemoryCostKiB},t={SecretHasher.TimeCost},p=1$";
            string stored;
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!(stored = (await restarted.Service<ITenantStore>().FindTokenAsync(tenant.ProjectTokenId))!.SecretHash).StartsWith(today, StringComparison.Ordinal)
                && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }

            Assert.True(stored.StartsWith($"$argon2id$v=19$m={SecretHasher.MemoryCostKiB},t={SecretHasher.TimeCost},p=1$", StringComparison.Ordinal),
                $"the hash was not moved to today's parameters: {stored[..40]}");
            Assert.True(new SecretHasher().Verify(stored, ApiTokenFormat.SecretOf(tenant.ProjectToken)));
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task AFleetsThreeHundredFirstUsesAfterARestartAllSucceed()
    {
        var dir = Directory.CreateTempSubdirectory("fastingest-cold-").FullName;
        var admin = ApiTokenFormat.Generate(TokenScope.Admin).Token;
        var limits = new FastIngest.RateLimiting.RateLimitOptions { ManagementPerWindow = 10_000 };
        var tokens = new List<string>();
        Tenant tenant;
        await using (var server = await TestServer.StartAsync(dir, admin, o => o with { RateLimits = limits }))
        {
            tenant = await server.CreateTenantAsync("fleet");
            for (var i = 0; i < 300; i++)
            {
                using var created = await server.PostAsync("/v1/tokens", tenant.OrgToken, new { project_id = tenant.ProjectId, scope = "read" });
                tokens.Add((await Json.ReadAsync(created, HttpStatusCode.Created)).GetProperty("token").GetString()!);
            }
        }

        // 5 s for a verification slot (2 s by default), so a loaded CI machine running other tests at the same time
        // does not decide the outcome; password-grade parameters (~70 ms each) still need over 10 s for 300 here.
        await using (var restarted = await TestServer.StartAsync(dir, admin, o => o with { RateLimits = limits, HashQueueTimeout = TimeSpan.FromSeconds(5) }))
        {
            foreach (var token in tokens)
            {
                restarted.Secrets.Remember(token);
            }

            var statuses = await Task.WhenAll(tokens.Select(async token =>
            {
                using var response = await restarted.SendAsync(HttpMethod.Get, "/v1/runs", token);
                return response.StatusCode;
            }));
            var summary = string.Join(", ", statuses.GroupBy(s => (int)s).Select(g => $"{g.Key} x {g.Count()}"));
            Assert.True(statuses.All(s => s == HttpStatusCode.OK), $"300 cold first uses at once: {summary}");
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(dir, recursive: true);
    }
}
