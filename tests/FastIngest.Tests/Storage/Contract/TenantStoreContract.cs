using FastIngest.Storage;

namespace FastIngest.Tests.Storage.Contract;

/// <summary>
/// What every storage backend promises about tenancy, tokens and confirm tokens, run against each backend by the
/// subclasses below (the same tests, two fixtures). Concurrency goes through two nodes on the same data.
/// </summary>
public abstract class TenantStoreContract : IAsyncLifetime
{
    private IStorageBackend _node = null!;

    protected abstract Task<IStorageBackend> CreateBackendAsync();

    public async Task InitializeAsync() => _node = await CreateBackendAsync();

    public async Task DisposeAsync() => await _node.DisposeAsync();

    private ITenantStore Tenants => _node.Tenants;

    [Fact]
    public async Task OrgAndProjectNamesAreUniqueAmongLiveOnesAndProjectsNeedALiveOrg()
    {
        var (created, org) = await Tenants.CreateOrgAsync("acme", 1);
        Assert.Equal(CreateResult.Created, created);
        Assert.Equal(CreateResult.DuplicateName, (await Tenants.CreateOrgAsync("acme", 2)).Result);
        Assert.Equal(org, await Tenants.FindOrgAsync(org!.Id));

        var (projectCreated, project) = await Tenants.CreateProjectAsync(org.Key, "api", 3);
        Assert.Equal(CreateResult.Created, projectCreated);
        Assert.Equal(CreateResult.DuplicateName, (await Tenants.CreateProjectAsync(org.Key, "api", 4)).Result);
        var other = (await Tenants.CreateOrgAsync("globex", 5)).Org!;
        Assert.Equal(CreateResult.Created, (await Tenants.CreateProjectAsync(other.Key, "api", 6)).Result); // per org
        Assert.Equal(CreateResult.ParentNotFound, (await Tenants.CreateProjectAsync(long.MaxValue, "orphan", 7)).Result);

        var found = await Tenants.FindProjectAsync(project!.Id);
        Assert.Equal(project with { RetentionDays = null }, found);
        Assert.Equal(["api"], (await Tenants.ListProjectsAsync(org.Key)).Select(static p => p.Name));
        Assert.Equal(2, (await Tenants.ListProjectsAsync(null)).Count);
        Assert.Null(await Tenants.FindProjectAsync(Guid.NewGuid().ToString()));
    }

    [Fact]
    public async Task NothingIsCreatedUnderAParentWhoseDeletionBegan()
    {
        var (org, project) = await NewProjectAsync("doomed");
        Assert.NotNull(await _node.Removal.BeginProjectDeletionAsync(project.Key, 10));
        Assert.False(await Tenants.InsertTokenAsync(Token("late-project-token", "ingest", org.Key, project.Key, 11)));

        Assert.NotNull(await _node.Removal.BeginOrgDeletionAsync(org.Key, 12));
        Assert.Equal(CreateResult.ParentNotFound, (await Tenants.CreateProjectAsync(org.Key, "late", 13)).Result);
        Assert.False(await Tenants.InsertTokenAsync(Token("late-org-token", "org", org.Key, null, 14)));
        Assert.Null(await Tenants.FindOrgAsync(org.Id));
        Assert.Equal(CreateResult.Created, (await Tenants.CreateOrgAsync("doomed", 15)).Result); // the name is free again
    }

    [Fact]
    public async Task TheStorageReportsItsSizeForMetrics()
    {
        await Tenants.CreateOrgAsync("sized", 1);
        var sizes = await _node.Statistics.SizesAsync(CancellationToken.None);
        Assert.True(sizes.Any(static s => s is { Name: "db", Bytes: > 0 }), $"sizes: {string.Join(", ", sizes)}");
    }

    [Fact]
    public async Task RetentionIsSetClearedAndListed()
    {
        var org = (await Tenants.CreateOrgAsync("kept", 1)).Org!;
        var project = (await Tenants.CreateProjectAsync(org.Key, "p", 1)).Project!;
        await Tenants.SetRetentionAsync(project.Key, 30);
        Assert.Equal(30, (await Tenants.FindProjectAsync(project.Id))!.RetentionDays);
        Assert.Equal([(project.Key, 30)], await Tenants.ProjectsWithRetentionAsync());
        await Tenants.SetRetentionAsync(project.Key, null);
        Assert.Empty(await Tenants.ProjectsWithRetentionAsync());
    }

    [Fact]
    public async Task ATokenIsRevokedOnceAndItsLastUseOnlyMovesForward()
    {
        var (org, project) = await NewProjectAsync("tokens");
        var token = Token("tok-1", "ingest", org.Key, project.Key, 10);
        Assert.True(await Tenants.InsertTokenAsync(token));
        var stored = await Tenants.FindTokenAsync("tok-1");
        Assert.Equal(token with { OrgId = org.Id, ProjectId = project.Id }, stored);

        await Tenants.RecordTokenUseAsync([("tok-1", 500)]);
        await Tenants.RecordTokenUseAsync([("tok-1", 400)]); // an older use flushed late
        Assert.Equal(500, (await Tenants.FindTokenAsync("tok-1"))!.LastUsedAtMs);

        Assert.True(await Tenants.RevokeTokenAsync("tok-1", 600));
        Assert.False(await Tenants.RevokeTokenAsync("tok-1", 700));
        Assert.Equal(600, (await Tenants.FindTokenAsync("tok-1"))!.RevokedAtMs);
        Assert.False(await Tenants.RevokeTokenAsync("no-such-token", 700));

        await Tenants.ReplaceSecretHashAsync("tok-1", "not-the-hash", "other");
        Assert.Equal("hash-tok-1", (await Tenants.FindTokenAsync("tok-1"))!.SecretHash); // changed meanwhile: kept
        await Tenants.ReplaceSecretHashAsync("tok-1", "hash-tok-1", "rehashed");
        Assert.Equal("rehashed", (await Tenants.FindTokenAsync("tok-1"))!.SecretHash);
    }

    [Fact]
    public async Task ATokenIssuedByARevokedTokenIsNotStored()
    {
        var (org, project) = await NewProjectAsync("issuer");
        Assert.True(await Tenants.InsertTokenAsync(Token("issuer", "org", org.Key, null, 1)));
        Assert.True(await Tenants.InsertTokenAsync(Token("child-1", "ingest", org.Key, project.Key, 2), issuedBy: "issuer"));
        Assert.True(await Tenants.RevokeTokenAsync("issuer", 3));
        Assert.False(await Tenants.InsertTokenAsync(Token("child-2", "ingest", org.Key, project.Key, 4), issuedBy: "issuer"));
        Assert.Null(await Tenants.FindTokenAsync("child-2"));
    }

    [Fact]
    public async Task TwoNodesIssuingAtOnceNeverExceedTheActiveTokenLimit()
    {
        var (org, project) = await NewProjectAsync("limit");
        await using var second = await _node.SecondNodeAsync();
        var limit = TokenLimits.ActivePerOwner;
        var attempts = await Task.WhenAll(Enumerable.Range(0, limit + 40).Select(i =>
            (i % 2 == 0 ? Tenants : second.Tenants).InsertTokenAsync(Token($"t-{i:D5}", "ingest", org.Key, project.Key, 100))));

        Assert.Equal(limit, attempts.Count(static stored => stored));
        Assert.Equal(limit, await Tenants.CountActiveTokensAsync("ingest", org.Key, project.Key, 101));
        Assert.Equal(limit, (await Tenants.ListProjectTokensAsync(project.Key)).Count);

        // Revoking one frees a place, and so does one expiring.
        Assert.True(await Tenants.RevokeTokenAsync("t-00000", 102));
        Assert.True(await Tenants.InsertTokenAsync(Token("after-revoke", "ingest", org.Key, project.Key, 103)));
        Assert.False(await Tenants.InsertTokenAsync(Token("over", "ingest", org.Key, project.Key, 104)));
        var (otherOrg, otherProject) = await NewProjectAsync("expiring");
        Assert.True(await Tenants.InsertTokenAsync(Token("short-lived", "ingest", otherOrg.Key, otherProject.Key, 100) with { ExpiresAtMs = 200 }));
        Assert.Equal(1, await Tenants.CountActiveTokensAsync("ingest", otherOrg.Key, otherProject.Key, 199));
        Assert.Equal(0, await Tenants.CountActiveTokensAsync("ingest", otherOrg.Key, otherProject.Key, 200));
    }

    [Fact]
    public async Task TheCursorKeyIs256BitsAndTheSameOnEveryNode()
    {
        await using var second = await _node.SecondNodeAsync();
        var key = await Tenants.CursorKeyAsync();
        Assert.Equal(32, key.Length);
        Assert.Equal(key, await second.Tenants.CursorKeyAsync());
        Assert.False(await Tenants.HasActiveAdminTokenAsync());
        Assert.True(await Tenants.InsertTokenAsync(Token("admin-1", "admin", null, null, 1)));
        Assert.True(await second.Tenants.HasActiveAdminTokenAsync());
        Assert.True(await Tenants.IsWritableAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task AConfirmTokenIsSpentExactlyOnceByFiftyConsumersOnTwoNodes()
    {
        await using var second = await _node.SecondNodeAsync();
        await _node.ConfirmTokens.InsertAsync(new ConfirmTokenRecord("hash", "purge_runs", "project:p", "tok", "purge", 0, 10_000));

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 50).Select(i =>
            (i % 2 == 0 ? _node : second).ConfirmTokens.TryConsumeAsync("hash", "purge_runs", "project:p", "tok", 5_000)));

        Assert.Equal(1, outcomes.Count(static o => o == ConfirmOutcome.Consumed));
        Assert.Equal(49, outcomes.Count(static o => o == ConfirmOutcome.AlreadyUsed));
    }

    [Fact]
    public async Task AConfirmTokenRefusalSaysWhyAndSpendsNothing()
    {
        var store = _node.ConfirmTokens;
        await store.InsertAsync(new ConfirmTokenRecord("h1", "delete_project", "project:a", "tok", "delete", 0, 1_000));
        Assert.Equal(ConfirmOutcome.Unknown, await store.TryConsumeAsync("nope", "delete_project", "project:a", "tok", 10));
        Assert.Equal(ConfirmOutcome.Mismatch, await store.TryConsumeAsync("h1", "purge_runs", "project:a", "tok", 10));
        Assert.Equal(ConfirmOutcome.Mismatch, await store.TryConsumeAsync("h1", "delete_project", "project:b", "tok", 10));
        Assert.Equal(ConfirmOutcome.Mismatch, await store.TryConsumeAsync("h1", "delete_project", "project:a", "other", 10));
        Assert.Equal(ConfirmOutcome.Expired, await store.TryConsumeAsync("h1", "delete_project", "project:a", "tok", 1_000));
        Assert.Equal(ConfirmOutcome.Consumed, await store.TryConsumeAsync("h1", "delete_project", "project:a", "tok", 999));

        await store.InsertAsync(new ConfirmTokenRecord("old", "purge_runs", "project:a", "tok", "purge", 0, 50));
        Assert.Equal(1, await store.PurgeExpiredAsync(100)); // "h1" expires at 1,000: kept
        Assert.Equal(ConfirmOutcome.Unknown, await store.TryConsumeAsync("old", "purge_runs", "project:a", "tok", 10));
    }

    private async Task<(OrgRecord Org, ProjectRecord Project)> NewProjectAsync(string name)
    {
        var org = (await Tenants.CreateOrgAsync(name, 1)).Org!;
        return (org, (await Tenants.CreateProjectAsync(org.Key, name, 1)).Project!);
    }

    private static StoredToken Token(string id, string scope, long? orgKey, long? projectKey, long createdAtMs) =>
        new(id, "hash-" + id, scope, orgKey, null, projectKey, null, "name-" + id, createdAtMs, null, null, null);
}

public sealed class SqliteTenantStoreContract : TenantStoreContract
{
    protected override Task<IStorageBackend> CreateBackendAsync() => Task.FromResult(SqliteBackend.Create());
}

public sealed class PostgresTenantStoreContract : TenantStoreContract
{
    protected override Task<IStorageBackend> CreateBackendAsync() => PostgresBackend.CreateAsync();
}
