using System.Net;
using System.Text.Json;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Observability;

public sealed class LoggingTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task WithAccessLogAllEveryRequestGetsOneJsonAccessLineWithItsRequestId()
    {
        await using var server = await TestServer.StartAsync(configure: o => o with { AccessLog = FastIngest.Observability.AccessLogMode.All });
        var tenant = await server.CreateTenantAsync("access-log");
        using var response = await IngestWithRequestIdAsync(server, tenant, "logged", "ci-job-42.attempt_1");
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("ci-job-42.attempt_1", response.Headers.GetValues("X-Request-Id").Single());

        await server.Logs.WaitForAsync(static l => l.Contains("\"http_request\"", StringComparison.Ordinal) && l.Contains("ci-job-42.attempt_1", StringComparison.Ordinal));
        var line = Assert.Single(Lines(server), l => l.GetProperty("event").GetString() == "http_request"
            && l.GetProperty("request_id").GetString() == "ci-job-42.attempt_1");
        Assert.Equal("POST", line.GetProperty("method").GetString());
        Assert.Equal("/v1/ingest", line.GetProperty("route").GetString());
        Assert.Equal(201, line.GetProperty("status").GetInt32());
        Assert.Equal(tenant.ProjectId, line.GetProperty("project_id").GetString());
        Assert.Equal("info", line.GetProperty("level").GetString());
        Assert.True(DateTimeOffset.TryParse(line.GetProperty("timestamp").GetString(), System.Globalization.CultureInfo.InvariantCulture, out _));
    }

    [Fact]
    public async Task AnIncomingTraceparentIsContinuedInEveryLogLineAndAnsweredWithThisServersSpan()
    {
        await using var server = await TestServer.StartAsync(configure: o => o with { AccessLog = FastIngest.Observability.AccessLogMode.All });
        var tenant = await server.CreateTenantAsync("trace");
        const string TraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest")
        {
            Content = new StringContent(FastIngest.Tests.Infrastructure.TestServer.Run("traced"), System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new("Bearer", tenant.ProjectToken);
        request.Headers.Add("X-Request-Id", "traced-request");
        request.Headers.Add("traceparent", $"00-{TraceId}-00f067aa0ba902b7-01");
        request.Headers.Add("tracestate", "vendor=opaque");
        using var response = await server.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);

        var answered = response.Headers.GetValues("traceparent").Single().Split('-');
        Assert.True(answered is ["00", TraceId, { Length: 16 }, "01"], $"traceparent answered: {string.Join('-', answered)}");
        Assert.NotEqual("00f067aa0ba902b7", answered[2]); // this server's span, a child of the caller's
        await server.Logs.WaitForAsync(static l => l.Contains("\"http_request\"", StringComparison.Ordinal) && l.Contains("traced-request", StringComparison.Ordinal));
        var line = Assert.Single(Lines(server), l => l.GetProperty("event").GetString() == "http_request"
            && l.GetProperty("request_id").GetString() == "traced-request");
        Assert.Equal((TraceId, answered[2]), (line.GetProperty("trace_id").GetString(), line.GetProperty("span_id").GetString()));
    }

    [Fact]
    public async Task ADeletionsJobAndTheWritesItQueuesLogUnderTheTraceOfTheRequestThatStartedIt()
    {
        await using var server = await TestServer.StartAsync();
        var tenant = await server.CreateTenantAsync("traced-job");
        using (var run = await server.IngestAsync(tenant.ProjectToken, TestServer.Run("to-delete")))
        {
            Assert.Equal(HttpStatusCode.Created, run.StatusCode);
        }

        const string TraceId = "0af7651916cd43dd8448eb211c80319c";
        using var asked = await server.SendAsync(HttpMethod.Delete, $"/v1/projects/{tenant.ProjectId}", tenant.OrgToken);
        var confirm = (await Json.ReadAsync(asked, HttpStatusCode.Accepted)).GetProperty("confirm_token").GetString()!;
        using var request = new HttpRequestMessage(HttpMethod.Delete, $"/v1/projects/{tenant.ProjectId}");
        request.Headers.Authorization = new("Bearer", tenant.OrgToken);
        request.Headers.Add("X-Confirm-Token", confirm);
        request.Headers.Add("traceparent", $"00-{TraceId}-b7ad6b7169203331-01");
        using var accepted = await server.Client.SendAsync(request);
        var requestSpan = accepted.Headers.GetValues("traceparent").Single().Split('-')[2];
        await server.FinishJobAsync(accepted, tenant.OrgToken);

        // The job's status turns final a moment before its line is written: wait for the line, not a fixed time.
        static bool IsFinished(JsonElement line) => line.GetProperty("event").GetString() == "job_finished";
        await Eventually.TrueAsync(() => Lines(server).Any(IsFinished), "the job_finished line");
        var finished = Assert.Single(Lines(server), IsFinished);
        Assert.Equal(TraceId, finished.GetProperty("trace_id").GetString());
        Assert.NotEqual(requestSpan, finished.GetProperty("span_id").GetString()); // the job's own span in the request's trace
    }

    [Theory]
    [InlineData(null)]
    [InlineData("00-00000000000000000000000000000000-00f067aa0ba902b7-01")] // an all-zero trace id is invalid
    [InlineData("not a traceparent")]
    public async Task WithoutAValidTraceparentTheRequestStartsATraceOfItsOwn(string? incoming)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/healthz");
        if (incoming is not null)
        {
            request.Headers.TryAddWithoutValidation("traceparent", incoming);
        }

        using var response = await _server.Client.SendAsync(request);
        var answered = response.Headers.GetValues("traceparent").Single().Split('-');
        Assert.True(answered is ["00", { Length: 32 } trace, { Length: 16 }, _] && trace != new string('0', 32),
            $"traceparent answered: {string.Join('-', answered)}");
    }

    [Fact]
    public async Task SuccessfulIngestsAreSummarisedOnceASecondWithTheSlowestRequestWhileErrorsKeepTheirOwnLines()
    {
        var tenant = await _server.CreateTenantAsync("summary-log");
        var ids = new[] { "ok-1", "ok-2", "ok-3" };
        foreach (var id in ids)
        {
            using var created = await IngestWithRequestIdAsync(_server, tenant, id, id);
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        using (var duplicate = await IngestWithRequestIdAsync(_server, tenant, "ok-1", "dup-1"))
        {
            Assert.Equal(HttpStatusCode.OK, duplicate.StatusCode);
        }

        using (var conflict = await _server.IngestAsync(tenant.ProjectToken, TestServer.Run("ok-1", "failed")))
        {
            Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        }

        // The conflict's own line comes after its response; every earlier request on the connection finished first.
        await _server.Logs.WaitForAsync(static l => l.Contains("\"http_request\"", StringComparison.Ordinal) && l.Contains("\"status\":409", StringComparison.Ordinal));
        _server.Service<FastIngest.Observability.AccessLogSummary>().Flush();

        var lines = Lines(_server);
        Assert.DoesNotContain(lines, l => l.GetProperty("event").GetString() == "http_request" && l.GetProperty("route").GetString() == "/v1/ingest"
            && l.GetProperty("status").GetInt32() < 300);
        Assert.Single(lines, l => l.GetProperty("event").GetString() == "http_request" && l.GetProperty("status").GetInt32() == 409);
        Assert.Contains(lines, l => l.GetProperty("event").GetString() == "http_request" && l.GetProperty("route").GetString() == "/v1/tokens");
        // The background loop may also have flushed once meanwhile (it ticks every second): sum the lines.
        var summaries = lines.Where(l => l.GetProperty("event").GetString() == "http_requests_summary"
            && l.GetProperty("route").GetString() == "/v1/ingest").ToList();
        Assert.NotEmpty(summaries);
        Assert.Equal((4L, 3L, 1L), (summaries.Sum(l => l.GetProperty("count").GetInt64()), summaries.Sum(l => l.GetProperty("created").GetInt64()),
            summaries.Sum(l => l.GetProperty("ok").GetInt64())));
        Assert.All(summaries, summary =>
        {
            Assert.Equal("POST", summary.GetProperty("method").GetString());
            Assert.Contains(summary.GetProperty("slowest_request_id").GetString(), ids.Append("dup-1"));
            Assert.Equal(tenant.ProjectId, summary.GetProperty("slowest_project_id").GetString());
            Assert.True(summary.GetProperty("max_ms").GetDouble() >= summary.GetProperty("mean_ms").GetDouble(), summary.ToString());
        });

        _server.Service<FastIngest.Observability.AccessLogSummary>().Flush(); // nothing new: no line
        Assert.Equal(summaries.Count, Lines(_server).Count(l => l.GetProperty("event").GetString() == "http_requests_summary"));
    }

    private static async Task<HttpResponseMessage> IngestWithRequestIdAsync(TestServer server, Tenant tenant, string runId, string requestId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest")
        {
            Content = new StringContent(TestServer.Run(runId), System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new("Bearer", tenant.ProjectToken);
        request.Headers.Add("X-Request-Id", requestId);
        return await server.Client.SendAsync(request);
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("x!y")]
    [InlineData("0123456789012345678901234567890123456789012345678901234567890123456789")]
    public async Task InsaneRequestIdsAreReplacedAndProblemBodiesCarryTheRequestId(string incoming)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest");
        request.Headers.TryAddWithoutValidation("X-Request-Id", incoming);
        using var response = await _server.Client.SendAsync(request);
        var echoed = response.Headers.GetValues("X-Request-Id").Single();
        Assert.NotEqual(incoming, echoed);
        var problem = await Json.ReadProblemAsync(response, HttpStatusCode.Unauthorized);
        Assert.Equal(echoed, problem.GetProperty("request_id").GetString());
    }

    [Fact]
    public async Task AuthFailureIsASecurityEventWithReasonButNeverTheToken()
    {
        var forged = FastIngest.Auth.ApiTokenFormat.Generate(FastIngest.Auth.TokenScope.Ingest).Token;
        using var response = await _server.IngestAsync(forged, TestServer.Run("x"));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);

        var failure = Assert.Single(Lines(), l => l.GetProperty("event").GetString() == "auth_failed");
        Assert.Equal("unknown_token", failure.GetProperty("reason").GetString());
        Assert.DoesNotContain(Lines(), l => l.ToString().Contains(forged[4..], StringComparison.Ordinal));
    }

    [Fact]
    public async Task TokenCreationAndRevocationAreSecurityEvents()
    {
        var tenant = await _server.CreateTenantAsync("security-events");
        (await _server.SendAsync(HttpMethod.Delete, $"/v1/tokens/{tenant.ProjectTokenId}", tenant.OrgToken)).Dispose();

        Assert.Contains(Lines(), l => l.GetProperty("event").GetString() == "token_created" && l.GetProperty("token_id").GetString() == tenant.ProjectTokenId);
        Assert.Contains(Lines(), l => l.GetProperty("event").GetString() == "token_revoked" && l.GetProperty("token_id").GetString() == tenant.ProjectTokenId);
    }

    private List<JsonElement> Lines() => Lines(_server);

    private static List<JsonElement> Lines(TestServer server) => server.Logs.Lines.Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    [Theory]
    [InlineData(true, "203.0.113.9")]
    [InlineData(false, "127.0.0.1")]
    public async Task XForwardedForNamesTheClientOnlyWhenItComesFromATrustedProxy(bool trusted, string loggedClient)
    {
        await using var server = await TestServer.StartAsync(configure: o => o with
        {
            TrustedProxies = trusted ? [System.Net.IPNetwork.Parse("127.0.0.0/8")] : [],
        });
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/runs");
        request.Headers.Add("X-Forwarded-For", "203.0.113.9");
        request.Headers.Authorization = new("Bearer", "fii_" + new string('0', 61));
        using var response = await server.Client.SendAsync(request);

        var line = server.Logs.Lines.Single(l => l.Contains("\"auth_failed\"", StringComparison.Ordinal) || l.Contains("Authentication failed", StringComparison.Ordinal));
        Assert.True(line.Contains(loggedClient, StringComparison.Ordinal), $"expected client {loggedClient} in: {line}");
    }
}
