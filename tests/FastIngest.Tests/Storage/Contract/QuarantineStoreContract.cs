namespace FastIngest.Tests.Storage.Contract;

/// <summary>Quarantine entries, the policy and the change log behave the same on every backend, also when two nodes race.</summary>
public abstract class QuarantineStoreContract : IAsyncLifetime
{
    private IStorageBackend _node = null!;
    private long _project;

    protected abstract Task<IStorageBackend> CreateBackendAsync();

    public async Task InitializeAsync()
    {
        _node = await CreateBackendAsync();
        var org = (await _node.Tenants.CreateOrgAsync("quarantine", 1)).Org!;
        _project = (await _node.Tenants.CreateProjectAsync(org.Key, "q", 1)).Project!.Key;
    }

    public async Task DisposeAsync() => await _node.DisposeAsync();

    [Fact]
    public async Task AnEntryIsAddedChangedExpiredAndReleasedAndEveryChangeIsLogged()
    {
        var store = _node.Quarantine;
        var (added, created) = await store.PutAsync(_project, "suite", "flaky", "times out", expiresAtMs: 5_000, "alice", 100);
        Assert.True(created);
        var (changed, createdAgain) = await store.PutAsync(_project, "suite", "flaky", "still times out", expiresAtMs: null, "bob", 200);
        Assert.False(createdAgain);
        Assert.Equal((added.Key, "still times out", (long?)null, "bob"), (changed.Key, changed.Reason, changed.ExpiresAtMs, changed.CreatedBy));

        await store.PutAsync(_project, "suite", "short", "until tomorrow", expiresAtMs: 1_000, "alice", 300);
        Assert.Equal(["flaky", "short"], (await store.ActiveAsync(_project, 999)).Select(static e => e.Name));
        Assert.Equal(["flaky"], (await store.ActiveAsync(_project, 1_000)).Select(static e => e.Name)); // expired at 1,000

        Assert.Null(await store.RemoveAsync(_project, added.Key, "auto-quarantine", 400)); // the policy never releases a person's entry
        Assert.NotNull(await store.RemoveAsync(_project, added.Key, "carol", 500));
        Assert.Null(await store.RemoveAsync(_project, added.Key, "carol", 600));
        Assert.Equal(["released", "added", "changed", "added"], (await store.ChangesAsync(_project, 10)).Select(static c => c.Action));
    }

    [Fact]
    public async Task ThePolicyNeverTakesOverAPersonsEntryAndItsOwnAreMarked()
    {
        var store = _node.Quarantine;
        await store.PutAsync(_project, "s", "by-hand", "investigating", null, "alice", 1);
        var (kept, created) = await store.PutAsync(_project, "s", "by-hand", "auto: 3 flakes", null, "auto-quarantine", 2, byPolicy: true);
        Assert.False(created);
        Assert.Equal(("investigating", false), (kept.Reason, kept.Auto));

        var (auto, autoCreated) = await store.PutAsync(_project, "s", "by-policy", "auto: 2 flakes", null, "auto-quarantine", 3, byPolicy: true);
        Assert.True(autoCreated && auto.Auto);
        Assert.NotNull(await store.RemoveAsync(_project, auto.Key, "auto-quarantine", 4));

        Assert.Null(await store.PolicyAsync(_project));
        await store.SetPolicyAsync(_project, 14, "alice", 5);
        Assert.Equal(14, await store.PolicyAsync(_project));
        Assert.Contains((_project, 14), await store.PoliciesAsync());
        await store.SetPolicyAsync(_project, null, "alice", 6);
        Assert.Null(await store.PolicyAsync(_project));
        Assert.Equal(["policy-off", "policy-on", "auto-released", "auto-added", "added"], (await store.ChangesAsync(_project, 10)).Select(static c => c.Action));
    }

    [Fact]
    public async Task TwoNodesQuarantiningTheSameTestAtOnceCreateItOnceAndLogOneAddition()
    {
        await using var second = await _node.SecondNodeAsync();
        var results = await Task.WhenAll(Enumerable.Range(0, 10).Select(i =>
            (i % 2 == 0 ? _node : second).Quarantine.PutAsync(_project, "s", "raced", $"reason {i}", null, $"user-{i}", 10 + i)));

        Assert.Equal(1, results.Count(static r => r.Created));
        Assert.Single(await _node.Quarantine.ActiveAsync(_project, 0));
        var log = await _node.Quarantine.ChangesAsync(_project, 20);
        Assert.Equal(1, log.Count(static c => c.Action == "added"));
        Assert.Equal(9, log.Count(static c => c.Action == "changed"));
    }
}

public sealed class SqliteQuarantineStoreContract : QuarantineStoreContract
{
    protected override Task<IStorageBackend> CreateBackendAsync() => Task.FromResult(SqliteBackend.Create());
}

public sealed class PostgresQuarantineStoreContract : QuarantineStoreContract
{
    protected override Task<IStorageBackend> CreateBackendAsync() => PostgresBackend.CreateAsync();
}
