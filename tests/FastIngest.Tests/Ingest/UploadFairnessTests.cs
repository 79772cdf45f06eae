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
        await Eventually.TrueAsync(() => spool.Receiving == 0, "every spool place to be given back"); // after the answers
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
    public async Task ALargeBodyArrivesIntoAPrivateSpoolFileThatIsGoneAfterItsRequestAndLeftoversGoAtStart()
    {
        var directory = Directory.CreateTempSubdirectory("fastingest-spool-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(directory, "spool"));
            var leftover = Path.Combine(directory, "spool", "left-by-kill-9.tmp");
            await File.WriteAllBytesAsync(leftover, new byte[1024]);
            await using var server = await TestServer.StartAsync(dataDirectory: directory,
                configure: o => o with { UploadMinRateGrace = TimeSpan.FromMinutes(2) });
            Assert.False(File.Exists(leftover), "a spool file from before the start survived it");

            var tenant = await server.CreateTenantAsync("spool-files");
            var head = "<testsuite name=\"s\">" + string.Concat(Enumerable.Range(0, 3000).Select(i => $"<testcase name=\"t{i}\"/>"));
            Assert.True(head.Length > 64 * 1024, "the report must be large enough to leave memory for the spool file");
            var (body, upload) = StartHeldUpload(server, tenant.ProjectToken, "spooled", head: head);
            var spoolDirectory = Path.Combine(directory, "spool");
            await Eventually.TrueAsync(() => Directory.EnumerateFiles(spoolDirectory).Any(), "the body to reach a spool file");
            if (!OperatingSystem.IsWindows())
            {
                var mode = File.GetUnixFileMode(Directory.EnumerateFiles(spoolDirectory).Single());
                Assert.True(mode == (UnixFileMode.UserRead | UnixFileMode.UserWrite), $"a spool file has mode {mode}");
            }

            body.SendTail();
            using (var response = await upload)
            {
                await Json.ReadAsync(response, HttpStatusCode.Created);
            }

            await Eventually.TrueAsync(() => !Directory.EnumerateFiles(spoolDirectory).Any(), "the spool file to be deleted");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task AnOrgOverItsSpoolBudgetGets503WhileAnotherOrgsUploadIsStored()
    {
        await using var server = await TestServer.StartAsync(configure: o => o with { SpoolBytesPerOrg = 128 * 1024 });
        var big = await server.CreateTenantAsync("spool-budget-big");
        var other = await server.CreateTenantAsync("spool-budget-other");
        static byte[] Report(int cases) => Encoding.UTF8.GetBytes(
            "<testsuite name=\"s\">" + string.Concat(Enumerable.Range(0, cases).Select(i => $"<testcase name=\"t{i}\"/>")) + "</testsuite>");

        var tooBig = Report(10_000);
        Assert.True(tooBig.Length > 128 * 1024);
        using (var refused = await TestCases.JUnitUploads.PostAsync(server, big.ProjectToken, tooBig, "run_id=over-budget"))
        {
            await Json.ReadProblemAsync(refused, HttpStatusCode.ServiceUnavailable);
            Assert.NotNull(refused.Headers.RetryAfter);
        }

        using (var stored = await TestCases.JUnitUploads.PostAsync(server, other.ProjectToken, Report(3_000), "run_id=within-budget"))
        {
            await Json.ReadAsync(stored, HttpStatusCode.Created);
        }

        await Eventually.TrueAsync(() => server.Service<UploadSpool>().Bytes == 0, "the spool's bytes to be given back");
    }

    [Fact]
    public async Task AChunkedReportOverTheUploadLimitGets413ThroughTheSpool()
    {
        await using var server = await TestServer.StartAsync(configure: o => o with { MaxJUnitUploadBytes = 100 * 1024 });
        var tenant = await server.CreateTenantAsync("spool-413");
        var (body, upload) = StartHeldUpload(server, tenant.ProjectToken, "too-large",
            head: "<testsuite name=\"s\">" + string.Concat(Enumerable.Range(0, 6000).Select(i => $"<testcase name=\"t{i}\"/>")));
        body.SendTail();
        using var response = await upload;
        await Json.ReadProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
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
        // Well before HeldBody gives up by itself (30 s): only the server's minimum rate can have dropped it.
        await Eventually.TrueAsync(() => spool.Receiving == 0, "the stalled upload to be dropped", TimeSpan.FromSeconds(15));
        body.SendTail(); // too late: the connection is gone or the answer is an error
        var outcome = await Record.ExceptionAsync(async () =>
        {
            using var response = await upload;
            Assert.True((int)response.StatusCode >= 400, $"a stalled upload was answered {(int)response.StatusCode}");
        });
        Assert.True(outcome is null or HttpRequestException or IOException or TaskCanceledException or TimeoutException, $"{outcome}");
    }

    private static (HeldBody Body, Task<HttpResponseMessage> Upload) StartHeldUpload(TestServer server, string token, string runId, bool json = false,
        string? head = null)
    {
        var body = json
            ? new HeldBody(Encoding.UTF8.GetBytes("{\"run_id\":\"x\","), Encoding.UTF8.GetBytes("}"))
            : new HeldBody(Encoding.UTF8.GetBytes(head ?? "<testsuite name=\"s\"><testcase name=\"a\"/>"), Encoding.UTF8.GetBytes("</testsuite>"));
        body.Headers.ContentType = new MediaTypeHeaderValue(json ? "application/json" : "application/xml");
        // A JSON run names itself in its body; only a JUnit upload takes run_id in the query.
        var request = new HttpRequestMessage(HttpMethod.Post, json ? "/v1/ingest" : $"/v1/ingest?run_id={runId}") { Content = body };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return (body, server.Client.SendAsync(request));
    }
}
