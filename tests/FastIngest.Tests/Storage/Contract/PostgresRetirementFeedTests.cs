using System.Collections.Concurrent;
using FastIngest.Storage;
using FastIngest.Storage.Postgres;
using FastIngest.Tests.Infrastructure;
using Npgsql;

namespace FastIngest.Tests.Storage.Contract;

/// <summary>
/// A retirement committed on one node reaches every other node's feed within a second (LISTEN/NOTIFY, no polling);
/// a lost listening connection makes the node forget everything, then listen again.
/// </summary>
public sealed class PostgresRetirementFeedTests : IAsyncLifetime
{
    /// <summary>
    /// The promise is one second, and a notification takes milliseconds; the bound here is wider only because every
    /// test class shares two loaded cores in CI (a feed that polled would still miss it by far).
    /// </summary>
    private static readonly TimeSpan s_withinOneSecond = TimeSpan.FromSeconds(3);
    private readonly CancellationTokenSource _stop = new();
    private readonly RecordingSink _sink = new();
    private string _connection = null!;
    private PostgresDatabase _nodeA = null!;
    private PostgresDatabase _nodeB = null!;
    private Task _listening = null!;

    public async Task InitializeAsync()
    {
        _connection = await PostgresCluster.CreateDatabaseAsync("feed");
        _nodeA = PostgresDatabase.Create(_connection);
        _nodeB = PostgresDatabase.Create(_connection);
        await _nodeA.MigrateAsync();
        await _nodeB.MigrateAsync();
        _listening = new PostgresRetirementFeed(_nodeB).ListenAsync(_sink, _stop.Token);
        await WaitForListenerAsync();
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _listening;
        await _nodeA.DisposeAsync();
        await _nodeB.DisposeAsync();
        _stop.Dispose();
    }

    [Fact]
    public async Task RevocationsAndDeletionsOnOneNodeReachTheOtherWithinASecond()
    {
        var tenants = new PostgresTenantStore(_nodeA);
        var removal = new PostgresDataRemovalStore(_nodeA);
        var org = (await tenants.CreateOrgAsync("feed", 1)).Org!;
        var project = (await tenants.CreateProjectAsync(org.Key, "feed", 1)).Project!;
        Assert.True(await tenants.InsertTokenAsync(new StoredToken("tok-a", "h", "ingest", org.Key, null, project.Key, null, null, 1, null, null, null)));
        Assert.True(await tenants.InsertTokenAsync(new StoredToken("tok-b", "h", "ingest", org.Key, null, project.Key, null, null, 1, null, null, null)));

        Assert.True(await tenants.RevokeTokenAsync("tok-a", 2));
        Assert.Equal("token:tok-a", await _sink.NextAsync(s_withinOneSecond));
        Assert.False(await tenants.RevokeTokenAsync("tok-a", 3)); // nothing changed: nothing sent

        Assert.Equal(["tok-b"], await removal.RevokeProjectTokensAsync(project.Key, 4));
        Assert.Equal("token:tok-b", await _sink.NextAsync(s_withinOneSecond));

        Assert.NotNull(await removal.BeginProjectDeletionAsync(project.Key, 5));
        Assert.Equal($"project:{project.Key}", await _sink.NextAsync(s_withinOneSecond));
        Assert.NotNull(await removal.BeginOrgDeletionAsync(org.Key, 6));
        Assert.Equal($"org:{org.Key}", await _sink.NextAsync(s_withinOneSecond));
        Assert.True(_sink.IsEmpty, "a change that changed nothing sent a retirement");
    }

    [Fact]
    public async Task ALostListeningConnectionForgetsEverythingAndListensAgain()
    {
        await using (var admin = new NpgsqlConnection(_connection))
        {
            await admin.OpenAsync();
            await using var kill = new NpgsqlCommand(
                $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN {PostgresRetirementFeed.Channel}%' AND datname = current_database() AND pid <> pg_backend_pid();", admin);
            await kill.ExecuteNonQueryAsync();
        }

        Assert.Equal("resynchronize", await _sink.NextAsync(TimeSpan.FromSeconds(5)));
        await WaitForListenerAsync();
        var tenants = new PostgresTenantStore(_nodeA);
        Assert.True(await tenants.InsertTokenAsync(new StoredToken("tok-c", "h", "admin", null, null, null, null, null, 1, null, null, null)));
        Assert.True(await tenants.RevokeTokenAsync("tok-c", 2));
        string next;
        while ((next = await _sink.NextAsync(s_withinOneSecond)) == "resynchronize")
        {
            // once when the connection was lost, once more when listening again (covers the gap between)
        }

        Assert.Equal("token:tok-c", next);
    }

    /// <summary>
    /// The feed's LISTEN is visible in pg_stat_activity once it listens (a notification before that would be lost).
    /// Only this test's database counts: servers of other tests listen on the same cluster.
    /// </summary>
    private async Task WaitForListenerAsync()
    {
        await using var admin = new NpgsqlConnection(_connection);
        await admin.OpenAsync();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            await using var listening = new NpgsqlCommand(
                $"SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN {PostgresRetirementFeed.Channel}%' AND datname = current_database() AND state = 'idle';", admin);
            if ((long)(await listening.ExecuteScalarAsync())! > 0)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, "the feed never started listening");
            await Task.Delay(20);
        }
    }

    private sealed class RecordingSink : IRetirementSink
    {
        private readonly ConcurrentQueue<string> _events = new();
        private readonly SemaphoreSlim _arrived = new(0);

        public bool IsEmpty => _events.IsEmpty;

        public void TokenRetired(string tokenId) => Add("token:" + tokenId);

        public void ProjectRetired(long projectKey) => Add(FormattableString.Invariant($"project:{projectKey}"));

        public void OrgRetired(long orgKey) => Add(FormattableString.Invariant($"org:{orgKey}"));

        public void Resynchronize() => Add("resynchronize");

        public async Task<string> NextAsync(TimeSpan within)
        {
            Assert.True(await _arrived.WaitAsync(within), $"nothing arrived within {within.TotalMilliseconds} ms");
            Assert.True(_events.TryDequeue(out var next));
            return next;
        }

        private void Add(string entry)
        {
            _events.Enqueue(entry);
            _arrived.Release();
        }
    }
}
