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

        // Hold the writer still: four runs fill the queue (five if the writer already took one and is waiting
        // for the gate); everything beyond must be refused at once.
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
            Assert.InRange(refused.Count, 15, 16);
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
        var created = all.Count(r => r.StatusCode == HttpStatusCode.Created);
        Assert.InRange(created, 4, 5); // every accepted run commits once the writer moves again
        Assert.Equal(20 - created, all.Count(r => r.StatusCode == HttpStatusCode.ServiceUnavailable));
    }
}
