using System.Diagnostics;
using System.Net;
using System.Text;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Ingest;

/// <summary>Large uploads are admitted through a fixed number of slots; small runs never wait for one.</summary>
public sealed class UploadSlotTests : IAsyncLifetime
{
    private TestServer _server = null!;
    private Tenant _tenant = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync(configure: o => o with { UploadSlots = 1, UploadSlotWait = TimeSpan.FromSeconds(1) });
        _tenant = await _server.CreateTenantAsync("slots");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task WhileTheOnlySlotIsHeldSmallRunsPassAndLargeBodiesGet503AfterTheWait()
    {
        // Another org's upload being parsed holds the only slot (taken here directly: bodies no longer hold slots
        // while they arrive, so only parsing and committing can).
        var slots = _server.Service<FastIngest.Ingest.UploadSlots>();
        var holder = await slots.TryEnterAsync(long.MaxValue, default);
        Assert.NotNull(holder);

        using (var small = await _server.IngestAsync(_tenant.ProjectToken, TestServer.Run("small-while-held")))
        {
            await Json.ReadAsync(small, HttpStatusCode.Created);
        }

        var large = TestServer.Run("large-while-held").Replace("}", ",\"tests\":[" +
            string.Join(',', Enumerable.Range(0, 2000).Select(i => $$"""{"name":"t{{i}}","status":"passed","duration_ms":1}""")) + "]}", StringComparison.Ordinal);
        Assert.True(Encoding.UTF8.GetByteCount(large) > 64 * 1024);
        var watch = Stopwatch.StartNew();
        using (var refused = await _server.IngestAsync(_tenant.ProjectToken, large))
        {
            var problem = await Json.ReadProblemAsync(refused, HttpStatusCode.ServiceUnavailable);
            Assert.Equal("urn:fastingest:problem:uploads-busy", problem.GetProperty("type").GetString());
            Assert.NotNull(refused.Headers.RetryAfter);
        }

        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(0.9), $"gave up after {watch.Elapsed}, not after waiting for a slot");

        holder!.Dispose();
        using var retried = await _server.IngestAsync(_tenant.ProjectToken, large);
        await Json.ReadAsync(retried, HttpStatusCode.Created); // the slot came back
        Assert.Equal(0, slots.InUse);
    }
}
