using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
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
        _server = await TestServer.StartAsync(configure: o => o with { UploadSlots = 1 });
        _tenant = await _server.CreateTenantAsync("slots");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task WhileTheOnlySlotIsHeldSmallRunsPassAndLargeBodiesGet503()
    {
        var stalled = new StalledReport();
        using var holder = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest?run_id=holder") { Content = stalled };
        holder.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _tenant.ProjectToken);
        var holding = _server.Client.SendAsync(holder);
        await stalled.Started.Task;

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
            await Json.ReadProblemAsync(refused, HttpStatusCode.ServiceUnavailable);
            Assert.NotNull(refused.Headers.RetryAfter);
        }

        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(9), $"gave up after {watch.Elapsed}, not after waiting for a slot");

        stalled.Finish.SetResult();
        using var held = await holding;
        await Json.ReadAsync(held, HttpStatusCode.Created);
        using var retried = await _server.IngestAsync(_tenant.ProjectToken, large);
        await Json.ReadAsync(retried, HttpStatusCode.Created); // the slot came back
    }

    /// <summary>
    /// A JUnit report that keeps trickling (at ~160 KiB/s: fast enough for the uploads' minimum rate of 16 KiB/s,
    /// which would otherwise drop it) until told to finish.
    /// </summary>
    private sealed class StalledReport : HttpContent
    {
        public StalledReport() => Headers.ContentType = new MediaTypeHeaderValue("application/xml");

        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Finish { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync("<testsuite name=\"s\"><testcase name=\"a\"/>"u8.ToArray());
            await stream.FlushAsync();
            Started.SetResult();
            var filler = Encoding.UTF8.GetBytes("<!--" + new string('.', 8192) + "-->");
            while (!Finish.Task.IsCompleted)
            {
                await stream.WriteAsync(filler);
                await stream.FlushAsync();
                await Task.WhenAny(Finish.Task, Task.Delay(50));
            }

            await stream.WriteAsync("</testsuite>"u8.ToArray());
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
