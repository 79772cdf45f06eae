using System.Net;
using FastIngest.Storage.Sqlite;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Storage;

public sealed class CommitFailureTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task DiskFullAcknowledgesNothingOfTheFailedBatchesReportsNotReadyAndRecovers()
    {
        var tenant = await _server.CreateTenantAsync("disk-full");
        var database = _server.Service<SqliteDatabase>();
        database.MaxPageCount = 60; // about 240 KB: a "disk" that fills after a few hundred runs

        var acknowledged = new List<string>();
        var refused = new List<string>();
        var branch = new string('b', 200);
        for (var i = 0; i < 2000 && refused.Count < 5; i++)
        {
            var runId = $"fill-{i}";
            using var response = await _server.IngestAsync(tenant.ProjectToken,
                TestServer.Run(runId).Replace("}", $",\"branch\":\"{branch}\"}}", StringComparison.Ordinal));
            if (response.StatusCode == HttpStatusCode.Created)
            {
                acknowledged.Add(runId);
            }
            else
            {
                await Json.ReadProblemAsync(response, HttpStatusCode.ServiceUnavailable);
                Assert.NotNull(response.Headers.RetryAfter);
                refused.Add(runId);
            }
        }

        Assert.NotEmpty(acknowledged);
        Assert.Equal(5, refused.Count);
        using (var ready = await _server.Client.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        }

        database.MaxPageCount = null; // the disk has room again
        using (var recovered = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("after-recovery")))
        {
            await Json.ReadAsync(recovered, HttpStatusCode.Created);
        }

        using (var ready = await _server.Client.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }

        foreach (var runId in acknowledged)
        {
            using var read = await _server.SendAsync(HttpMethod.Get, $"/v1/runs/{runId}", tenant.ProjectToken);
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        }

        foreach (var runId in refused)
        {
            using var read = await _server.SendAsync(HttpMethod.Get, $"/v1/runs/{runId}", tenant.ProjectToken);
            Assert.Equal(HttpStatusCode.NotFound, read.StatusCode);
        }
    }
}
