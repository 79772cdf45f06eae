using System.Collections.Concurrent;
using System.Net;
using FastIngest.Storage.Sqlite;
using FastIngest.Tests.Infrastructure;
using Xunit.Abstractions;

namespace FastIngest.Tests.Hostile;

/// <summary>
/// The interleavings of <see cref="TenantIsolationTests"/> left to chance: many rounds with seeded random
/// start offsets, so first use, revocation, deletion, ingest and the writer's batches meet in every order.
/// </summary>
public sealed class IsolationRaceRepetitionTests : IAsyncLifetime
{
    private readonly ITestOutputHelper _output;
    private TestServer _server = null!;

    public IsolationRaceRepetitionTests(ITestOutputHelper output) => _output = output;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(hasher: new BlockingHasher(maxExtraMilliseconds: 12), configure: o => o with
    {
        // Every refused upload of a deleted project is an auth failure from 127.0.0.1; the address block is not under test.
        RateLimits = new FastIngest.RateLimiting.RateLimitOptions { ConfirmPerWindow = 10_000, ManagementPerWindow = 10_000, AuthFailuresBeforeBlock = 100_000 },
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task FirstUseRacingItsRevocationNeverLeavesTheTokenWorking()
    {
        var seed = Environment.TickCount;
        _output.WriteLine($"seed {seed}");
        var random = new Random(seed);
        var tenant = await _server.CreateTenantAsync("race-revoke");
        for (var round = 0; round < 40; round++)
        {
            using var created = await _server.PostAsync("/v1/tokens", tenant.OrgToken, new { project_id = tenant.ProjectId });
            var json = await Json.ReadAsync(created, HttpStatusCode.Created);
            var token = json.GetProperty("token").GetString()!;
            var id = json.GetProperty("id").GetString()!;
            int useDelay = random.Next(0, 8), revokeDelay = random.Next(0, 14);

            await Task.WhenAll(
                Task.Run(async () =>
                {
                    await Task.Delay(useDelay);
                    using var use = await _server.SendAsync(HttpMethod.Get, "/v1/runs", token);
                }),
                Task.Run(async () =>
                {
                    await Task.Delay(revokeDelay);
                    using var revoke = await _server.SendAsync(HttpMethod.Delete, $"/v1/tokens/{id}", tenant.OrgToken);
                    Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
                }));

            using var after = await _server.SendAsync(HttpMethod.Get, "/v1/runs", token);
            Assert.True(after.StatusCode == HttpStatusCode.Unauthorized,
                $"seed {seed} round {round} (use +{useDelay} ms, revoke +{revokeDelay} ms): the revoked token answered {(int)after.StatusCode} {await after.Content.ReadAsStringAsync()}");
        }
    }

    [Fact]
    public async Task ProjectDeletionRacingItsIngestNeverFailsAnotherTenantAndLeavesNothingBehind()
    {
        var seed = Environment.TickCount;
        _output.WriteLine($"seed {seed}");
        var random = new Random(seed);
        var bystander = await _server.CreateTenantAsync("race-bystander");
        var owner = await _server.CreateTenantAsync("race-owner");
        var bystanderAnswers = new ConcurrentBag<string>();
        using var stop = new CancellationTokenSource();
        var sequence = 0;
        var background = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var response = await _server.IngestAsync(bystander.ProjectToken, TestServer.Run($"b-{Interlocked.Increment(ref sequence)}"));
                if (response.StatusCode != HttpStatusCode.Created)
                {
                    bystanderAnswers.Add($"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                }
            }
        });

        var database = _server.Service<SqliteDatabase>();
        var ownerOutcomes = new List<HttpStatusCode>();
        for (var round = 0; round < 12; round++)
        {
            using var project = await _server.PostAsync("/v1/projects", owner.OrgToken, new { org_id = owner.OrgId, name = $"doomed-{round}" });
            var projectId = (await Json.ReadAsync(project, HttpStatusCode.Created)).GetProperty("id").GetString()!;
            var projectKey = (await _server.Service<FastIngest.Storage.ITenantStore>().FindProjectAsync(projectId))!.Key;
            using var token = await _server.PostAsync("/v1/tokens", owner.OrgToken, new { project_id = projectId });
            var ingest = (await Json.ReadAsync(token, HttpStatusCode.Created)).GetProperty("token").GetString()!;
            using (var warm = await _server.SendAsync(HttpMethod.Get, "/v1/runs", ingest))
            {
                // Verified and cached first: this race is deletion against ingest (first use against revocation is
                // the test above), and a cold first use can lose to a fast deletion in every round.
                await Json.ReadAsync(warm, HttpStatusCode.OK);
            }

            var deleteDelay = random.Next(0, 15);
            var deletionDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

            // Each writer posts until the deletion has finished, then three more times: uploads land before,
            // during and after it in every round.
            var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
            {
                var statuses = new List<HttpStatusCode>();
                var after = 0;
                for (var i = 0; after < 3 && i < 2000; i++)
                {
                    after += deletionDone.Task.IsCompleted ? 1 : 0;
                    using var response = await _server.IngestAsync(ingest, TestServer.Run($"o-{round}-{w}-{i}"));
                    statuses.Add(response.StatusCode);
                }

                return statuses;
            })).ToArray();
            await Task.Delay(deleteDelay);
            await _server.ConfirmAndFinishAsync(HttpMethod.Delete, $"/v1/projects/{projectId}", owner.OrgToken);

            deletionDone.SetResult();

            var ownerStatuses = (await Task.WhenAll(writers)).SelectMany(s => s).ToList();
            ownerOutcomes.AddRange(ownerStatuses);
            var unexpected = ownerStatuses.Where(s => s is not (HttpStatusCode.Created or HttpStatusCode.Unauthorized or HttpStatusCode.NotFound)).ToList();
            Assert.True(unexpected.Count == 0, $"seed {seed} round {round}: the deleted project's own uploads got {string.Join(", ", unexpected.Select(s => (int)s))}");
            using var connectionLease = database.Read();
            var connection = connectionLease.Connection;
            using var count = connection.CreateCommand();
            count.CommandText = $"SELECT count(*) FROM test_runs WHERE project_id = {projectKey};";
            Assert.True((long)count.ExecuteScalar()! == 0, $"seed {seed} round {round}: runs of the deleted project were left behind");
        }

        await stop.CancelAsync();
        await background;
        var mix = string.Join(", ", ownerOutcomes.GroupBy(s => (int)s).OrderBy(g => g.Key).Select(g => $"{g.Key} x {g.Count()}"));
        _output.WriteLine($"the deleted projects' uploads: {mix}");
        Assert.True(ownerOutcomes.Contains(HttpStatusCode.Created), $"seed {seed}: no upload landed before a deletion ({mix})");
        Assert.True(bystanderAnswers.IsEmpty, $"seed {seed}: another tenant's ingest failed: {string.Join(" / ", bystanderAnswers.Take(5))}");
        Assert.True(sequence > 50, $"the other tenant got only {sequence} requests through");
        using var ready = await _server.Client.GetAsync("/readyz");
        Assert.True(ready.StatusCode == HttpStatusCode.OK, $"readiness after one tenant's deletions: {(int)ready.StatusCode}");
    }
}
