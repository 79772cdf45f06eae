using System.Net;
using FastIngest.Storage.Sqlite;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Ingest;

public sealed class BackpressureTests
{
    [Fact]
    public async Task FullQueueAnswers503WithRetryAfterAtOnceAndQueuedRunsStillCommit()
    {
        await using var server = await TestServer.StartAsync(configure: o => o with { IngestQueueCapacity = 4, MaxBatchSize = 1 });
        var tenant = await server.CreateTenantAsync("backpressure");
        var gate = server.Service<SqliteDatabase>().WriteGate;

        // Hold the writer still: it takes one run and waits for the gate, then four more fill the queue.
        await gate.WaitAsync();
        Task<HttpResponseMessage>[] requests;
        try
        {
            requests = Enumerable.Range(0, 20).Select(i => server.IngestAsync(tenant.ProjectToken, TestServer.Run($"bp-{i}"))).ToArray();
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (requests.Count(r => r.IsCompleted) < 15 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }

            // The refused ones were answered while the writer was still blocked: no unbounded waiting.
            var refused = requests.Where(r => r.IsCompleted).Select(r => r.Result).ToList();
            Assert.Equal(15, refused.Count);
            foreach (var response in refused)
            {
                await Json.ReadProblemAsync(response, HttpStatusCode.ServiceUnavailable);
                Assert.NotNull(response.Headers.RetryAfter);
            }
        }
        finally
        {
            gate.Release();
        }

        var all = await Task.WhenAll(requests);
        Assert.Equal(5, all.Count(r => r.StatusCode == HttpStatusCode.Created));
        Assert.Equal(15, all.Count(r => r.StatusCode == HttpStatusCode.ServiceUnavailable));
    }
}
