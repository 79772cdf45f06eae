using System.Net;
using System.Net.Http.Headers;
using System.Text;
using FastIngest.Ingest;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Ingest;

public sealed class UploadFairnessTests : IAsyncLifetime
{
    private TestServer _server = null!;

    // A long grace: the hog's uploads stall on purpose and must keep their slots until the test lets them go.
    public async Task InitializeAsync() => _server = await TestServer.StartAsync(configure: o => o with
    {
        UploadSlots = 4,
        UploadMinRateGrace = TimeSpan.FromMinutes(2),
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task OneTenantsStalledUploadsHoldOnlyItsShareAndAnotherTenantsUploadGoesThrough()
    {
        var hog = await _server.CreateTenantAsync("upload-hog");
        var other = await _server.CreateTenantAsync("upload-other");
        var slots = _server.Service<UploadSlots>();
        var held = Enumerable.Range(0, 6).Select(i => StartHeldUpload(_server, hog.ProjectToken, $"hog-{i}")).ToList();
        await Eventually.TrueAsync(() => slots.InUse == slots.TenantShare, $"the hog to hold its {slots.TenantShare} slots");

        using (var response = await TestCases.JUnitUploads.PostAsync(_server, other.ProjectToken,
            Encoding.UTF8.GetBytes("<testsuite><testcase name=\"t\"/></testsuite>"), "run_id=other-1"))
        {
            await Json.ReadAsync(response, HttpStatusCode.Created);
        }

        Assert.True(slots.InUse == slots.TenantShare, $"the hog holds {slots.InUse} slots; its share is {slots.TenantShare}");
        foreach (var (body, _) in held)
        {
            body.SendTail();
        }

        foreach (var (_, upload) in held)
        {
            using var response = await upload;
            await Json.ReadAsync(response, HttpStatusCode.Created); // the hog's waiting uploads got its slots in turn
        }

        Assert.Equal(0, slots.InUse);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AnUploadThatStopsSendingLosesItsSlot(bool json)
    {
        // Kestrel requires a grace longer than its 1 s heartbeat.
        await using var server = await TestServer.StartAsync(configure: o => o with { UploadMinRateGrace = TimeSpan.FromSeconds(2) });
        var tenant = await server.CreateTenantAsync($"upload-stalled-{json}");
        var slots = server.Service<UploadSlots>();
        var (body, upload) = StartHeldUpload(server, tenant.ProjectToken, "stalled", json);
        await Eventually.TrueAsync(() => slots.InUse == 1, "the upload to hold a slot");

        // The minimum rate is enforced after the grace (by Kestrel on the JSON path, by MinRateReadStream on the
        // JUnit one); Kestrel's clock cannot be injected, so this waits on the real one.
        await Eventually.TrueAsync(() => slots.InUse == 0, "the stalled upload to lose its slot", TimeSpan.FromSeconds(40));
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
