using System.Net;
using FastIngest.RateLimiting;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Hostile;

/// <summary>
/// The duplicate-run and confirm-token races, run many times with random start jitter so that different
/// interleavings (same batch, adjacent batches, cache miss vs hit) all get exercised.
/// </summary>
public sealed class RaceRepetitionTests : IAsyncLifetime
{
    private const int Rounds = 25;
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync(configure: o => o with
    {
        RateLimits = new RateLimitOptions { ConfirmPerWindow = 100_000, ManagementPerWindow = 100_000 },
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task IdenticalRetriesRacingAlwaysYieldOneCreatedAndTheRestDuplicates()
    {
        var tenant = await _server.CreateTenantAsync("race-dup");
        for (var round = 0; round < Rounds; round++)
        {
            var body = TestServer.Run($"race-{round}", durationMs: round);
            var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(async _ =>
            {
                await Task.Delay(Random.Shared.Next(0, 4));
                return await _server.IngestAsync(tenant.ProjectToken, body);
            }));

            Assert.Equal(1, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
            Assert.Equal(11, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        }
    }

    [Fact]
    public async Task ConcurrentConsumersOfAConfirmTokenAlwaysYieldExactlyOneSuccess()
    {
        var tenant = await _server.CreateTenantAsync("race-confirm");
        for (var round = 0; round < Rounds; round++)
        {
            using var issued = await _server.SendAsync(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/tokens/revoke-all", tenant.OrgToken, "");
            var confirm = (await Json.ReadAsync(issued, HttpStatusCode.Accepted)).GetProperty("confirm_token").GetString()!;
            var statuses = await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
            {
                await Task.Delay(Random.Shared.Next(0, 4));
                using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/projects/{tenant.ProjectId}/tokens/revoke-all");
                request.Headers.Authorization = new("Bearer", tenant.OrgToken);
                request.Headers.Add("X-Confirm-Token", confirm);
                using var response = await _server.Client.SendAsync(request);
                return response.StatusCode;
            }));

            Assert.Equal(1, statuses.Count(s => s == HttpStatusCode.OK));
            Assert.Equal(9, statuses.Count(s => s == HttpStatusCode.Conflict));
        }
    }
}
