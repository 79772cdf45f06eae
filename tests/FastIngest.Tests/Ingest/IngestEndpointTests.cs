using System.Net;
using System.Net.Http.Headers;
using System.Text;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Ingest;

public sealed class IngestEndpointTests : IAsyncLifetime
{
    private TestServer _server = null!;
    private Tenant _tenant = null!;

    public async Task InitializeAsync()
    {
        // A small body limit, so oversized bodies stay small enough for the client to finish sending them before
        // the server answers 413 and closes (with megabytes, HttpClient can fail on the broken pipe first).
        _server = await TestServer.StartAsync(configure: o => o with { MaxIngestBodyBytes = 64 * 1024 });
        _tenant = await _server.CreateTenantAsync("ingest");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task NewRunReturns201AndIsReadableBack()
    {
        using var response = await _server.IngestAsync(_tenant.ProjectToken, TestServer.Run("new-run", "failed", 777));
        var body = await Json.ReadAsync(response, HttpStatusCode.Created);
        Assert.False(body.GetProperty("duplicate").GetBoolean());
        Assert.Equal(_tenant.ProjectId, body.GetProperty("project_id").GetString());

        using var read = await _server.SendAsync(HttpMethod.Get, "/v1/runs/new-run", _tenant.ProjectToken);
        var run = await Json.ReadAsync(read, HttpStatusCode.OK);
        Assert.Equal("failed", run.GetProperty("status").GetString());
        Assert.Equal(777, run.GetProperty("duration_ms").GetInt64());
        Assert.Equal("2026-01-12T10:00:00.000Z", run.GetProperty("timestamp").GetString());
    }

    [Fact]
    public async Task DuplicateRunWithSameBodyReturns200AndDuplicateTrue()
    {
        using var first = await _server.IngestAsync(_tenant.ProjectToken, TestServer.Run("retry"));
        await Json.ReadAsync(first, HttpStatusCode.Created);
        // Same content, different spelling: key order, whitespace and offset must not matter.
        using var retry = await _server.IngestAsync(_tenant.ProjectToken,
            """{ "timestamp": "2026-01-12T11:00:00+01:00", "duration_ms": 1234, "status": "passed", "run_id": "retry" }""");
        Assert.True((await Json.ReadAsync(retry, HttpStatusCode.OK)).GetProperty("duplicate").GetBoolean());
    }

    [Fact]
    public async Task ConflictingBodyReturns409AndLeavesTheStoredRunUnchanged()
    {
        using var first = await _server.IngestAsync(_tenant.ProjectToken, TestServer.Run("conflict", "passed", 100));
        await Json.ReadAsync(first, HttpStatusCode.Created);
        using var conflict = await _server.IngestAsync(_tenant.ProjectToken, TestServer.Run("conflict", "failed", 100));
        await Json.ReadProblemAsync(conflict, HttpStatusCode.Conflict);

        using var read = await _server.SendAsync(HttpMethod.Get, "/v1/runs/conflict", _tenant.ProjectToken);
        Assert.Equal("passed", (await Json.ReadAsync(read, HttpStatusCode.OK)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task FiftyParallelIdenticalPostsGiveExactlyOne201And49Duplicates()
    {
        var body = TestServer.Run("parallel-50");
        var responses = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => _server.IngestAsync(_tenant.ProjectToken, body)));

        Assert.Equal(1, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        Assert.Equal(49, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        foreach (var response in responses.Where(r => r.StatusCode == HttpStatusCode.OK))
        {
            Assert.Contains("\"duplicate\":true", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ParallelConflictingPostsStoreExactlyOneVersion()
    {
        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            _server.IngestAsync(_tenant.ProjectToken, TestServer.Run("race-conflict", durationMs: i))));

        var created = Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
        Assert.Equal(19, responses.Count(r => r.StatusCode == HttpStatusCode.Conflict));
        using var read = await _server.SendAsync(HttpMethod.Get, "/v1/runs/race-conflict", _tenant.ProjectToken);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.NotNull(created);
    }

    [Fact]
    public async Task TheSameRunIdInTwoProjectsIsStoredForBoth()
    {
        var other = await _server.CreateTenantAsync("ingest-other");
        using var a = await _server.IngestAsync(_tenant.ProjectToken, TestServer.Run("shared-id", "passed"));
        using var b = await _server.IngestAsync(other.ProjectToken, TestServer.Run("shared-id", "failed"));
        await Json.ReadAsync(a, HttpStatusCode.Created);
        await Json.ReadAsync(b, HttpStatusCode.Created);

        using var readA = await _server.SendAsync(HttpMethod.Get, "/v1/runs/shared-id", _tenant.ProjectToken);
        using var readB = await _server.SendAsync(HttpMethod.Get, "/v1/runs/shared-id", other.ProjectToken);
        Assert.Equal("passed", (await Json.ReadAsync(readA, HttpStatusCode.OK)).GetProperty("status").GetString());
        Assert.Equal("failed", (await Json.ReadAsync(readB, HttpStatusCode.OK)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task ATokenOfProjectACannotSeeProjectBsRuns()
    {
        var other = await _server.CreateTenantAsync("ingest-foreign");
        using var written = await _server.IngestAsync(other.ProjectToken, TestServer.Run("only-in-b"));
        await Json.ReadAsync(written, HttpStatusCode.Created);

        using var read = await _server.SendAsync(HttpMethod.Get, "/v1/runs/only-in-b", _tenant.ProjectToken);
        await Json.ReadProblemAsync(read, HttpStatusCode.NotFound);
        using var byProjectId = await _server.SendAsync(HttpMethod.Get, $"/v1/runs/only-in-b?project_id={other.ProjectId}", _tenant.OrgToken);
        await Json.ReadProblemAsync(byProjectId, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task InvalidBodyReturns400WithEveryFieldError()
    {
        using var response = await _server.IngestAsync(_tenant.ProjectToken, """{"run_id":"","status":"x","duration":5000,"duration_ms":1.5}""");
        var problem = await Json.ReadProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal(["duration", "duration_ms", "run_id", "status", "timestamp"], Json.ErrorFields(problem).Order());
    }

    [Fact]
    public async Task ANulInATestsNameIsRefusedByFieldAndOneInItsFailureMessageIsShownAsAReplacementCharacter()
    {
        using (var refused = await _server.IngestAsync(_tenant.ProjectToken,
            """{"run_id":"nul-name","status":"failed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","tests":[{"suite":"s","name":"a\u0000b","status":"passed","duration_ms":1}]}"""))
        {
            var problem = await Json.ReadProblemAsync(refused, HttpStatusCode.BadRequest);
            Assert.Equal(["tests[0]"], Json.ErrorFields(problem));
            Assert.Contains("NUL", problem.ToString(), StringComparison.Ordinal);
        }

        using var stored = await _server.IngestAsync(_tenant.ProjectToken,
            """{"run_id":"nul-message","status":"failed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","tests":[{"suite":"s","name":"t","status":"failed","duration_ms":1,"failure_message":"bad\u0000byte"}]}""");
        await Json.ReadAsync(stored, HttpStatusCode.Created);
        using var tests = await _server.SendAsync(HttpMethod.Get, "/v1/runs/nul-message/tests", _tenant.ProjectToken);
        var message = (await Json.ReadAsync(tests, HttpStatusCode.OK)).GetProperty("tests")[0].GetProperty("failure_message").GetString();
        Assert.Equal("bad\uFFFDbyte", message);
    }

    [Fact]
    public async Task InvalidBodyWritesNothing()
    {
        using var response = await _server.IngestAsync(_tenant.ProjectToken,
            """{"run_id":"half-valid","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","bogus":1}""");
        await Json.ReadProblemAsync(response, HttpStatusCode.BadRequest);
        using var read = await _server.SendAsync(HttpMethod.Get, "/v1/runs/half-valid", _tenant.ProjectToken);
        await Json.ReadProblemAsync(read, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task WrongContentTypeReturns415()
    {
        using var response = await _server.SendAsync(HttpMethod.Post, "/v1/ingest", _tenant.ProjectToken, TestServer.Run("ct"), "text/plain");
        await Json.ReadProblemAsync(response, HttpStatusCode.UnsupportedMediaType);
    }

    [Fact]
    public async Task OversizedBodyReturns413()
    {
        var huge = TestServer.Run("big").Replace("}", ",\"branch\":\"" + new string('a', _server.Options.MaxIngestBodyBytes) + "\"}", StringComparison.Ordinal);
        using var response = await _server.IngestAsync(_tenant.ProjectToken, huge);
        await Json.ReadProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
    }

    [Fact]
    public async Task OversizedChunkedBodyReturns413WithoutContentLength()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _tenant.ProjectToken);
        request.Content = new ChunkedContent(Encoding.UTF8.GetBytes(new string(' ', _server.Options.MaxIngestBodyBytes + 1) + TestServer.Run("chunked")));
        using var response = await _server.Client.SendAsync(request);
        await Json.ReadProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
    }

    [Fact]
    public async Task SmallChunkedBodyIsAccepted()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _tenant.ProjectToken);
        request.Content = new ChunkedContent(Encoding.UTF8.GetBytes(TestServer.Run("chunked-small")));
        using var response = await _server.Client.SendAsync(request);
        await Json.ReadAsync(response, HttpStatusCode.Created);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Basic dXNlcjpwYXNz")]
    [InlineData("Bearer")]
    [InlineData("Bearer not-a-token")]
    public async Task MissingOrMalformedCredentialsReturn401WithWwwAuthenticate(string? authorization)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest") { Content = new StringContent(TestServer.Run("x"), Encoding.UTF8, "application/json") };
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        using var response = await _server.Client.SendAsync(request);
        await Json.ReadProblemAsync(response, HttpStatusCode.Unauthorized);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
    }

    [Fact]
    public async Task BadCredentialsAreCheckedBeforeTheBody()
    {
        using var response = await _server.SendAsync(HttpMethod.Post, "/v1/ingest", "fii_nope", "not json at all", "text/plain");
        await Json.ReadProblemAsync(response, HttpStatusCode.Unauthorized);
    }

    /// <summary>Content without a known length, so HttpClient sends it chunked.</summary>
    private sealed class ChunkedContent : HttpContent
    {
        private readonly byte[] _data;

        public ChunkedContent(byte[] data)
        {
            _data = data;
            Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            var data = _data;
            for (var offset = 0; offset < data.Length; offset += 8192)
            {
                await stream.WriteAsync(data.AsMemory(offset, Math.Min(8192, data.Length - offset)));
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    [Fact]
    public async Task AJsonRunWithQueryParametersOrAContentEncodingIsRefusedNotStoredInSilence()
    {
        var tenant = await _server.CreateTenantAsync("json-extras");
        var other = await _server.CreateTenantAsync("json-extras-other");
        using (var named = await _server.SendAsync(HttpMethod.Post, $"/v1/ingest?project_id={other.ProjectId}", tenant.ProjectToken, TestServer.Run("q-extra")))
        {
            Assert.Contains("project_id", Json.ErrorFields(await Json.ReadProblemAsync(named, HttpStatusCode.BadRequest)));
        }

        foreach (var encoding in new[] { "gzip", "br", "x-bogus" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest")
            {
                Content = new StringContent(TestServer.Run("e-extra"), System.Text.Encoding.UTF8, "application/json"),
            };
            request.Content.Headers.ContentEncoding.Add(encoding);
            request.Headers.Authorization = new("Bearer", tenant.ProjectToken);
            using var response = await _server.Client.SendAsync(request);
            await Json.ReadProblemAsync(response, HttpStatusCode.UnsupportedMediaType);
        }

        using var stored = await _server.SendAsync(HttpMethod.Get, "/v1/runs", tenant.ProjectToken);
        Assert.Equal(0, (await Json.ReadAsync(stored, HttpStatusCode.OK)).GetProperty("runs").GetArrayLength());
    }
}
