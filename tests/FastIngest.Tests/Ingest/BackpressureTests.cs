using System.Net;
using FastIngest.Storage;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Ingest;

public sealed class BackpressureTests
{
    [Fact]
    public async Task FullQueueAnswers503WithRetryAfterAtOnceAndQueuedRunsStillCommit()
    {
        await using var server = await TestServer.StartAsync(configure: o => o with { IngestQueueCapacity = 4, MaxBatchSize = 1 });
        var tenant = await server.CreateTenantAsync("backpressure");
        // Hold the writer still with a write of our own that waits for a signal: four runs fill the queue and
        // everything beyond must be refused at once.
        using var gate = new SemaphoreSlim(0, 1);
        using var holding = new SemaphoreSlim(0, 1);
        var hold = new QueuedWrite<bool>("test_hold", durable: false, () =>
        {
            holding.Release();
            return gate.Wait(TimeSpan.FromSeconds(30));
        });
        Assert.True(server.Service<IStorageWriter>().TryEnqueue(hold));
        Assert.True(await holding.WaitAsync(TimeSpan.FromSeconds(10)), "the writer never took the holding write");
        Task<HttpResponseMessage>[] requests;
        try
        {
            requests = Enumerable.Range(0, 20).Select(i => server.IngestAsync(tenant.ProjectToken, TestServer.Run($"bp-{i}"))).ToArray();
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (requests.Count(r => r.IsCompleted) < 16 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }

            // The refused ones were answered while the writer was still blocked: no unbounded waiting.
            var refused = requests.Where(r => r.IsCompleted).Select(r => r.Result).ToList();
            Assert.Equal(16, refused.Count);
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
        Assert.True(await hold.Task, "the holding write timed out");
        Assert.Equal(4, created); // every accepted run commits once the writer moves again
        Assert.Equal(20 - created, all.Count(r => r.StatusCode == HttpStatusCode.ServiceUnavailable));
    }
}
