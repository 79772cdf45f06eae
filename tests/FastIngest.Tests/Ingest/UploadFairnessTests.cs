using System.Net;
using System.Net.Http.Headers;
using System.Text;
using FastIngest.Ingest;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Ingest;

public sealed class UploadFairnessTests : IAsyncLifetime
{
    private TestServer _server = null!;

    // A long grace: the hogs' uploads stall on purpose and must keep arriving until the test lets them go.
    public async Task InitializeAsync() => _server = await TestServer.StartAsync(configure: o => o with
    {
        UploadSlots = 2,
        UploadMinRateGrace = TimeSpan.FromMinutes(2),
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task SlowUploadsOfColludingTenantsHoldNoSlotAndAThirdTenantsUploadGoesThrough()
    {
        // Measured abuse: six trickling uploads held every slot. Now bodies arrive into the spool first, so two
        // tenants trickling six uploads each hold connections and spool places, not the slots parsing needs.
        var hogs = new[] { await _server.CreateTenantAsync("upload-hog-1"), await _server.CreateTenantAsync("upload-hog-2") };
        var other = await _server.CreateTenantAsync("upload-other");
        var slots = _server.Service<UploadSlots>();
        var spool = _server.Service<UploadSpool>();
        var held = hogs.SelectMany(hog => Enumerable.Range(0, 6).Select(i => StartHeldUpload(_server, hog.ProjectToken, $"hog-{i}"))).ToList();
        await Eventually.TrueAsync(() => spool.Receiving == 12, "the hogs' twelve uploads to be arriving");

        using (var response = await TestCases.JUnitUploads.PostAsync(_server, other.ProjectToken,
            Encoding.UTF8.GetBytes("<testsuite><testcase name=\"t\"/></testsuite>"), "run_id=other-1"))
        {
            await Json.ReadAsync(response, HttpStatusCode.Created);
        }

        Assert.True(slots.InUse == 0, $"trickling uploads hold {slots.InUse} slots");
        foreach (var (body, _) in held)
        {
            body.SendTail();
        }

        foreach (var (_, upload) in held)
        {
            using var response = await upload;
            await Json.ReadAsync(response, HttpStatusCode.Created); // each got a slot once its body was in
        }

        Assert.Equal(0, slots.InUse);
        Assert.Equal(0, spool.Receiving);
    }

    [Fact]
    public async Task ATenantWithItsMostUploadsArrivingGets503AtOnceWhileOthersAreServed()
    {
        await using var server = await TestServer.StartAsync(configure: o => o with
        {
            UploadsReceivingPerOrg = 2,
            UploadMinRateGrace = TimeSpan.FromMinutes(2),
        });
        var hog = await server.CreateTenantAsync("spool-hog");
        var other = await server.CreateTenantAsync("spool-other");
        var held = Enumerable.Range(0, 2).Select(i => StartHeldUpload(server, hog.ProjectToken, $"spool-hog-{i}")).ToList();
        var spool = server.Service<UploadSpool>();
        await Eventually.TrueAsync(() => spool.Receiving == 2, "the hog's two uploads to be arriving");

        using (var refused = await TestCases.JUnitUploads.PostAsync(server, hog.ProjectToken,
            Encoding.UTF8.GetBytes("<testsuite><testcase name=\"t\"/></testsuite>"), "run_id=spool-hog-3"))
        {
            var problem = await Json.ReadProblemAsync(refused, HttpStatusCode.ServiceUnavailable);
            Assert.Contains("2 uploads arriving", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.NotNull(refused.Headers.RetryAfter);
        }

        using (var served = await TestCases.JUnitUploads.PostAsync(server, other.ProjectToken,
            Encoding.UTF8.GetBytes("<testsuite><testcase name=\"t\"/></testsuite>"), "run_id=spool-other"))
        {
            await Json.ReadAsync(served, HttpStatusCode.Created);
        }

        foreach (var (body, upload) in held)
        {
            body.SendTail();
            using var response = await upload;
            await Json.ReadAsync(response, HttpStatusCode.Created);
        }
    }

    [Fact]
    public async Task SpoolFilesAreGoneAfterTheirRequestsAndLeftoversAreDeletedAtStart()
    {
        var directory = Directory.CreateTempSubdirectory("fastingest-spool-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(directory, "spool"));
            var leftover = Path.Combine(directory, "spool", "ASPNETCORE_left-by-kill-9.tmp");
            await File.WriteAllBytesAsync(leftover, new byte[1024]);
            await using var server = await TestServer.StartAsync(dataDirectory: directory);
            Assert.False(File.Exists(leftover), "a spool file from before the start survived it");

            var tenant = await server.CreateTenantAsync("spool-files");
            var report = "<testsuite name=\"s\">" + string.Concat(Enumerable.Range(0, 3000).Select(i => $"<testcase name=\"t{i}\"/>")) + "</testsuite>";
            Assert.True(report.Length > 64 * 1024, "the report must be large enough to leave memory for the spool file");
            using (var response = await TestCases.JUnitUploads.PostAsync(server, tenant.ProjectToken, Encoding.UTF8.GetBytes(report), "run_id=spooled"))
            {
                await Json.ReadAsync(response, HttpStatusCode.Created);
            }

            Assert.Empty(Directory.EnumerateFiles(Path.Combine(directory, "spool")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AnUploadThatStopsSendingIsDropped(bool json)
    {
        // Kestrel requires a grace longer than its 1 s heartbeat.
        await using var server = await TestServer.StartAsync(configure: o => o with { UploadMinRateGrace = TimeSpan.FromSeconds(2) });
        var tenant = await server.CreateTenantAsync($"upload-stalled-{json}");
        var spool = server.Service<UploadSpool>();
        var (body, upload) = StartHeldUpload(server, tenant.ProjectToken, "stalled", json);
        await Eventually.TrueAsync(() => spool.Receiving == 1, "the upload to be arriving");

        // The minimum rate is enforced after the grace (by Kestrel on the JSON path, by MinRateReadStream on the
        // JUnit one); Kestrel's clock cannot be injected, so this waits on the real one.
        await Eventually.TrueAsync(() => spool.Receiving == 0, "the stalled upload to be dropped", TimeSpan.FromSeconds(40));
        body.SendTail(); // too late: the connection is gone or the answer is an error
        var outcome = await Record.ExceptionAsync(async () =>
        {
            using var response = await upload;
            Assert.True((int)response.StatusCode >= 400, $"a stalled upload was answered {(int)response.StatusCode}");
        });
        Assert.True(outcome is null or HttpRequestException or IOException or TaskCanceledException or TimeoutException, $"{outcome}");
    }

    private static (HeldBody Body, Task<HttpResponseMessage> Upload) StartHeldUpload(TestServer server, string token, string runId, bool json = false)
    {
        var body = json
            ? new HeldBody(Encoding.UTF8.GetBytes("{\"run_id\":\"x\","), Encoding.UTF8.GetBytes("}"))
            : new HeldBody(Encoding.UTF8.GetBytes("<testsuite name=\"s\"><testcase name=\"a\"/>"), Encoding.UTF8.GetBytes("</testsuite>"));
        body.Headers.ContentType = new MediaTypeHeaderValue(json ? "application/json" : "application/xml");
        // A JSON run names itself in its body; only a JUnit upload takes run_id in the query.
        var request = new HttpRequestMessage(HttpMethod.Post, json ? "/v1/ingest" : $"/v1/ingest?run_id={runId}") { Content = body };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return (body, server.Client.SendAsync(request));
    }
}
