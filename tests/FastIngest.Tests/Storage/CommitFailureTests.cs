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
        var refusedTraces = new List<string>();
        static string TraceOf(int i) => $"{i + 1:x32}";
        var branch = new string('b', 200);
        for (var i = 0; i < 2000 && refused.Count < 5; i++)
        {
            var runId = $"fill-{i}";
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest")
            {
                Content = new StringContent(TestServer.Run(runId).Replace("}", $",\"branch\":\"{branch}\"}}", StringComparison.Ordinal),
                    System.Text.Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new("Bearer", tenant.ProjectToken);
            request.Headers.Add("traceparent", $"00-{TraceOf(i)}-00f067aa0ba902b7-01");
            using var response = await _server.Client.SendAsync(request);
            if (response.StatusCode == HttpStatusCode.Created)
            {
                acknowledged.Add(runId);
            }
            else
            {
                await Json.ReadProblemAsync(response, HttpStatusCode.ServiceUnavailable);
                Assert.NotNull(response.Headers.RetryAfter);
                refused.Add(runId);
                refusedTraces.Add(TraceOf(i));
            }
        }

        // The failure's log line names the traces of the requests it refused, so each client's trace shows why.
        var failures = _server.Logs.Lines.Where(static l => l.Contains("\"batch_commit_failed\"", StringComparison.Ordinal)).ToList();
        Assert.All(refusedTraces, trace => Assert.Contains(failures, l => l.Contains(trace, StringComparison.Ordinal)));

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
