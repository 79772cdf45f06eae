using System.Net;
using FastIngest.Auth;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Auth;

public sealed class TokenLifecycleTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task RevokedTokenGets401OnTheVeryNextRequest()
    {
        var tenant = await _server.CreateTenantAsync("revoke");
        using (var warm = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("before-revoke")))
        {
            await Json.ReadAsync(warm, HttpStatusCode.Created); // now cached
        }

        using (var revoke = await _server.SendAsync(HttpMethod.Delete, $"/v1/tokens/{tenant.ProjectTokenId}", tenant.OrgToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        using var after = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("after-revoke"));
        await Json.ReadProblemAsync(after, HttpStatusCode.Unauthorized);
        using var again = await _server.SendAsync(HttpMethod.Delete, $"/v1/tokens/{tenant.ProjectTokenId}", tenant.OrgToken);
        Assert.Equal(HttpStatusCode.NoContent, again.StatusCode);
    }

    [Fact]
    public async Task ExpiredTokenGets401EvenWhenCached()
    {
        var tenant = await _server.CreateTenantAsync("expiry");
        using var created = await _server.PostAsync("/v1/tokens", tenant.OrgToken, new { project_id = tenant.ProjectId, expires_in = 4 });
        var token = (await Json.ReadAsync(created, HttpStatusCode.Created)).GetProperty("token").GetString()!;

        using (var early = await _server.IngestAsync(token, TestServer.Run("before-expiry")))
        {
            await Json.ReadAsync(early, HttpStatusCode.Created);
        }

        await Task.Delay(TimeSpan.FromSeconds(4.2));
        using var late = await _server.IngestAsync(token, TestServer.Run("after-expiry"));
        await Json.ReadProblemAsync(late, HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task ConcurrentFirstUseOfOneTokenRunsArgon2Once()
    {
        var tenant = await _server.CreateTenantAsync("single-flight");
        var authenticator = _server.Service<Authenticator>();
        var before = authenticator.HashVerifications;

        var responses = await Task.WhenAll(Enumerable.Range(0, 32).Select(i =>
            _server.IngestAsync(tenant.ProjectToken, TestServer.Run($"sf-{i}"))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.Created, r.StatusCode));
        Assert.Equal(1, authenticator.HashVerifications - before);
    }

    [Fact]
    public async Task WellFormedTokenWithWrongSecretIsRejectedAndRepeatsCostNoArgon2()
    {
        var tenant = await _server.CreateTenantAsync("wrong-secret");
        var (fake, _) = ApiTokenFormat.Generate(TokenScope.Ingest);
        // Same public id as the real token, different secret, valid checksum: it must reach Argon2 once.
        var forged = ForgedTokens.WithChecksum(tenant.ProjectToken[..16] + fake[16..^6]);
        var authenticator = _server.Service<Authenticator>();
        var before = authenticator.HashVerifications;

        for (var i = 0; i < 5; i++)
        {
            using var response = await _server.IngestAsync(forged, TestServer.Run("forged"));
            await Json.ReadProblemAsync(response, HttpStatusCode.Unauthorized);
        }

        Assert.Equal(1, authenticator.HashVerifications - before);
        using var real = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("real-after-forgery"));
        await Json.ReadAsync(real, HttpStatusCode.Created);
    }

    [Fact]
    public async Task UnknownTokenIdsNeverRunArgon2()
    {
        var authenticator = _server.Service<Authenticator>();
        var before = authenticator.HashVerifications;
        for (var i = 0; i < 20; i++)
        {
            using var response = await _server.IngestAsync(ApiTokenFormat.Generate(TokenScope.Ingest).Token, TestServer.Run("unknown"));
            await Json.ReadProblemAsync(response, HttpStatusCode.Unauthorized);
        }

        Assert.Equal(0, authenticator.HashVerifications - before);
    }

    [Fact]
    public async Task ScopeLetterMustMatchTheStoredScope()
    {
        var tenant = await _server.CreateTenantAsync("scope-letter");
        // Turn an ingest token into a "read" one by editing the marker and fixing the checksum.
        var forged = ForgedTokens.WithChecksum("fir" + tenant.ProjectToken[3..^6]);
        using var response = await _server.SendAsync(HttpMethod.Get, "/v1/runs/anything", forged);
        await Json.ReadProblemAsync(response, HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task AdminTokenFileIsWrittenOnFirstStartWithMode0600AndWorks()
    {
        var dir = Directory.CreateTempSubdirectory("fastingest-admin-").FullName;
        var options = _server.Options with { DataDirectory = dir, AdminToken = null };
        await using (var first = await TestServer.StartAsync(dir, configure: _ => options))
        {
            var path = Path.Combine(dir, "admin-token");
            var token = (await File.ReadAllTextAsync(path)).Trim();
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            using var response = await first.PostAsync("/v1/orgs", token, new { name = "via-file" });
            await Json.ReadAsync(response, HttpStatusCode.Created);
        }

        var firstToken = await File.ReadAllTextAsync(Path.Combine(dir, "admin-token"));
        await using (await TestServer.StartAsync(dir, configure: _ => options))
        {
            // A restart keeps the existing admin credential instead of minting another.
            Assert.Equal(firstToken, await File.ReadAllTextAsync(Path.Combine(dir, "admin-token")));
        }
    }

    [Fact]
    public async Task ARecheckRetiresCachedTokensRevokedBehindTheCachesBackAndKeepsTheRestWithoutArgon2()
    {
        var revoked = await _server.CreateTenantAsync("recheck-revoked");
        var kept = await _server.CreateTenantAsync("recheck-kept");
        foreach (var token in new[] { revoked.ProjectToken, kept.ProjectToken })
        {
            using var warm = await _server.IngestAsync(token, TestServer.Run("warm"));
            Assert.Equal(HttpStatusCode.Created, warm.StatusCode);
        }

        // What another node's revocation looks like to this one when the notification was lost: the row changed,
        // the cache did not.
        Assert.True(await _server.Service<FastIngest.Storage.ITenantStore>().RevokeTokenAsync(revoked.ProjectTokenId, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        using (var stale = await _server.IngestAsync(revoked.ProjectToken, TestServer.Run("stale")))
        {
            Assert.Equal(HttpStatusCode.Created, stale.StatusCode); // still cached
        }

        var authenticator = _server.Service<Authenticator>();
        var argon2Before = authenticator.HashVerifications;
        Assert.True(await authenticator.RecheckCachedAsync() >= 1);

        using (var refused = await _server.IngestAsync(revoked.ProjectToken, TestServer.Run("after-recheck")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        using (var still = await _server.IngestAsync(kept.ProjectToken, TestServer.Run("after-recheck")))
        {
            Assert.Equal(HttpStatusCode.Created, still.StatusCode);
        }

        Assert.Equal(argon2Before, authenticator.HashVerifications); // the kept token was never verified again
    }

    [Fact]
    public async Task GeneratedAdminTokenIsSavedToItsFileAndOnlyItsPathIsPrinted()
    {
        var dir = Directory.CreateTempSubdirectory("fastingest-admin-print-").FullName;
        using var database = new FastIngest.Storage.Sqlite.SqliteDatabase(Path.Combine(dir, "fastingest.db"), FastIngest.Configuration.DurabilityMode.Normal);
        database.Migrate();
        using var writer = new FastIngest.Storage.Sqlite.SqliteRunBatchStore(database, FastIngest.Configuration.DurabilityMode.Normal);
        var store = new FastIngest.Storage.Sqlite.SqliteTenantStore(database,
            new FastIngest.Storage.Sqlite.SqliteWrites(new FastIngest.Storage.Sqlite.InlineStorageWriter(writer), writer));
        var options = _server.Options with { DataDirectory = dir, AdminToken = null };
        using var console = new StringWriter();

        await AdminTokenBootstrap.EnsureAsync(options, store, new TokenIssuer(store, TimeProvider.System, new SecretHasher(1024, 1)),
            new FastIngest.Storage.ProcessStartupLock(), console);

        var token = File.ReadAllText(options.AdminTokenPath).Trim();
        var printed = console.ToString();
        Assert.True(ApiTokenFormat.IsWellFormed(token, out _), $"the file holds '{token}'");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(options.AdminTokenPath));
        Assert.NotNull(await store.FindTokenAsync(ApiTokenFormat.IdOf(token).ToString()));
        Assert.False(printed.Contains(ApiTokenFormat.SecretOf(token).ToString(), StringComparison.Ordinal), $"stdout shows the token: {printed}");
        Assert.Contains(options.AdminTokenPath, printed, StringComparison.Ordinal);
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task AProjectHoldsAtMostTheLimitOfActiveTokensPerScopeAndRevokingFreesAPlace()
    {
        var tenant = await _server.CreateTenantAsync("token-limit");
        var key = (await _server.Service<FastIngest.Storage.ITenantStore>().FindProjectAsync(tenant.ProjectId))!.Key;
        var orgKey = (await _server.Service<FastIngest.Storage.ITenantStore>().FindOrgAsync(tenant.OrgId))!.Key;
        using (var connection = _server.Service<FastIngest.Storage.Sqlite.SqliteDatabase>().OpenWriter()) // test setup, beside the server's writer
        using (var fill = connection.CreateCommand())
        {
            // The tenant has one ingest token; fill the project up to the limit without 999 Argon2 runs (plus an
            // expired one, which does not count).
            fill.CommandText = $"""
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {FastIngest.Storage.TokenLimits.ActivePerOwner - 1})
                INSERT INTO api_tokens (id, secret_hash, scope, org_id, project_id, created_at)
                SELECT printf('limit%07d', i), 'x', 'ingest', {orgKey}, {key}, 0 FROM n;
                INSERT INTO api_tokens (id, secret_hash, scope, org_id, project_id, created_at, expires_at)
                VALUES ('expired00001', 'x', 'ingest', {orgKey}, {key}, 0, 1);
                """;
            fill.ExecuteNonQuery();
        }

        using (var refused = await _server.PostAsync("/v1/tokens", tenant.OrgToken, new { project_id = tenant.ProjectId }))
        {
            var problem = await Json.ReadProblemAsync(refused, HttpStatusCode.Conflict);
            Assert.EndsWith("token-limit", problem.GetProperty("type").GetString(), StringComparison.Ordinal);
        }

        using (var read = await _server.PostAsync("/v1/tokens", tenant.OrgToken, new { project_id = tenant.ProjectId, scope = "read" }))
        {
            await Json.ReadAsync(read, HttpStatusCode.Created); // another scope has its own limit
        }

        using (var revoke = await _server.SendAsync(HttpMethod.Delete, "/v1/tokens/limit0000001", tenant.OrgToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        using var allowed = await _server.PostAsync("/v1/tokens", tenant.OrgToken, new { project_id = tenant.ProjectId });
        await Json.ReadAsync(allowed, HttpStatusCode.Created);
    }

    [Fact]
    public async Task MintingHashesInTheSameBoundedSlotsAsVerificationAndSaysBusyWhenTheyAreFull()
    {
        await using var server = await TestServer.StartAsync(configure: o => o with { HashQueueTimeout = TimeSpan.FromMilliseconds(300) });
        var tenant = await server.CreateTenantAsync("mint-slots");
        var slots = server.Service<HashSlots>();
        var held = 0;
        while (await slots.TryEnterAsync())
        {
            held++; // every slot, as a burst of other tenants' first uses would
        }

        using (var busy = await server.PostAsync("/v1/tokens", tenant.OrgToken, new { project_id = tenant.ProjectId }))
        {
            await Json.ReadProblemAsync(busy, HttpStatusCode.ServiceUnavailable);
            Assert.NotNull(busy.Headers.RetryAfter);
        }

        for (var i = 0; i < held; i++)
        {
            slots.Exit();
        }

        using var created = await server.PostAsync("/v1/tokens", tenant.OrgToken, new { project_id = tenant.ProjectId });
        await Json.ReadAsync(created, HttpStatusCode.Created);
    }
}
