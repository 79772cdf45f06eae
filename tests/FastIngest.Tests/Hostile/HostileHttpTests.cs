using System.Net;
using System.Net.Sockets;
using System.Text;
using CsCheck;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Hostile;

/// <summary>
/// A corpus of known nasty requests, plus generated ones, against the running server: every answer is a
/// 4xx (or the connection is refused by Kestrel's limits), never a 5xx, and the server stays healthy.
/// </summary>
public sealed class HostileHttpTests : IAsyncLifetime
{
    private TestServer _server = null!;
    private Tenant _tenant = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        _tenant = await _server.CreateTenantAsync("hostile");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public static TheoryData<string, byte[]> NastyBodies => new()
    {
        { "deep nesting", Encoding.UTF8.GetBytes(new string('[', 100_000) + new string(']', 100_000)) },
        { "deep object", Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"counts\":", 1000)) + "1" + new string('}', 1000)) },
        { "huge number", Encoding.UTF8.GetBytes("{\"run_id\":\"a\",\"status\":\"passed\",\"duration_ms\":" + new string('9', 5000) + ",\"timestamp\":\"2026-01-12T10:00:00Z\"}") },
        { "huge exponent", Encoding.UTF8.GetBytes("{\"duration_ms\":1e999999999}") },
        { "NUL bytes", [.. "{\"run_id\":\"a\0b\",\"status\":\"passed\0\"}"u8] },
        { "raw NUL", [0, 0, 0, 0] },
        { "invalid UTF-8", [.. "{\"run_id\":\""u8, 0xC0, 0xAF, 0xED, 0xA0, 0x80, .. "\"}"u8] },
        { "UTF-8 BOM", [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(TestServer.Run("bom"))] },
        { "UTF-16 body", Encoding.Unicode.GetBytes(TestServer.Run("utf16")) },
        { "duplicate keys", Encoding.UTF8.GetBytes("{\"run_id\":\"a\",\"run_id\":\"b\",\"status\":\"passed\",\"duration_ms\":1,\"timestamp\":\"2026-01-12T10:00:00Z\"}") },
        { "lone surrogate escape", Encoding.UTF8.GetBytes("{\"run_id\":\"\\uDC00\"}") },
        { "64 KiB string", Encoding.UTF8.GetBytes("{\"branch\":\"" + new string('x', 60_000) + "\"}") },
        { "many keys", Encoding.UTF8.GetBytes("{" + string.Join(",", Enumerable.Range(0, 5000).Select(i => $"\"k{i}\":1")) + "}") },
        { "empty", [] },
        { "whitespace only", Encoding.UTF8.GetBytes("   \r\n\t  ") },
    };

    [Theory]
    [MemberData(nameof(NastyBodies))]
    public async Task NastyBodiesGet4xxAndTheServerStaysHealthy(string name, byte[] body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.Authorization = new("Bearer", _tenant.ProjectToken);
        using var response = await _server.Client.SendAsync(request);

        Assert.True((int)response.StatusCode is >= 400 and < 500, $"{name}: {(int)response.StatusCode}");
        Assert.Equal(HttpStatusCode.OK, (await _server.Client.GetAsync("/healthz")).StatusCode);
    }

    public static TheoryData<string, string> RawRequests => new()
    {
        { "bare LF in a header value", "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\nInjected: yes\r\nContent-Length: 0\r\n\r\n" },
        { "CR inside a header value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\rb\r\n\r\n" },
        { "10 MB header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + new string('a', 10 * 1024 * 1024) + "\r\n\r\n" },
        { "invalid chunk size", "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n" },
        { "content-length and chunked", "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
        { "garbage request line", "\u0001\u0002 / HTTP/9.9\r\n\r\n" },
        { "too many headers", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + string.Concat(Enumerable.Range(0, 200).Select(i => $"X-H{i}: v\r\n")) + "\r\n" },
    };

    [Theory]
    [MemberData(nameof(RawRequests))]
    public async Task MalformedHttpIsRefusedWithout5xxAndTheServerStaysHealthy(string name, string raw)
    {
        var status = await SendRawAsync(raw);
        Assert.True(status is null or (>= 400 and < 500), $"{name}: {status}");
        Assert.Equal(HttpStatusCode.OK, (await _server.Client.GetAsync("/healthz")).StatusCode);
    }

    [Fact]
    public async Task GeneratedBodiesAndHeadersNeverGet5xx()
    {
        var cases = Gen.Select(Gen.Byte.Array[0, 300], Gen.OneOf("application/json", "application/json; charset=utf-8", "text/plain", "application/xml", ""),
            Gen.OneOf(Gen.Const(_tenant.ProjectToken), Gen.String[0, 80], Gen.Const(_tenant.ProjectToken[..^1] + "x")))
            .Array[200].Single();
        foreach (var (body, contentType, token) in cases)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest") { Content = new ByteArrayContent(body) };
            if (contentType.Length > 0)
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            }

            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
            using var response = await _server.Client.SendAsync(request);
            Assert.True((int)response.StatusCode < 500, $"{(int)response.StatusCode} for a {body.Length}-byte body");
        }
    }

    public static TheoryData<string, string> BrokenBodies => new()
    {
        { "impossible chunk size", "FFFFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n" },
        { "non-hex chunk size", "zz\r\n{}\r\n0\r\n\r\n" },
        { "chunk longer than announced", "2\r\n{}}}\r\n0\r\n\r\n" },
    };

    [Theory]
    [MemberData(nameof(BrokenBodies))]
    public async Task BrokenChunkingOfAnAuthenticatedIngestIsA400ProblemNeverA2xx(string name, string chunks)
    {
        foreach (var contentType in new[] { "application/json", "application/xml" })
        {
            var raw = "POST /v1/ingest?run_id=broken HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" +
                $"Content-Type: {contentType}\r\nAuthorization: Bearer {_tenant.ProjectToken}\r\n\r\n" + chunks;
            var response = await SendRawForResponseAsync(raw);
            Assert.True(response is not null && response.StartsWith("HTTP/1.1 400 ", StringComparison.Ordinal),
                $"{name} ({contentType}): {response ?? "closed without an answer"}");
            Assert.True(response!.Contains("application/problem+json", StringComparison.Ordinal), $"{name} ({contentType}): {response}");
        }
    }

    [Fact]
    public async Task ABodyOfAHundredThousandUnknownFieldsGetsASmallProblemThatCountsThem()
    {
        var body = "{" + string.Join(",", Enumerable.Range(0, 100_000).Select(i => $"\"f{i}\":1")) + "}";
        using var response = await _server.IngestAsync(_tenant.ProjectToken, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(text.Length < 8 * 1024, $"a {body.Length}-byte body got a {text.Length}-character problem");
        var problem = System.Text.Json.JsonDocument.Parse(text).RootElement;
        Assert.Equal(400, problem.GetProperty("status").GetInt32());
        Assert.Equal(20, problem.GetProperty("errors").GetArrayLength());
        Assert.Contains("fields are invalid", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET", "/v1/no-such-route", 404)]
    [InlineData("GET", "/v1/ingest", 405)]
    [InlineData("PUT", "/v1/runs", 405)]
    public async Task UnmatchedRoutesAndMethodsAnswerAProblemWithTheRequestId(string method, string path, int expected)
    {
        using var response = await _server.SendAsync(new HttpMethod(method), path, _tenant.ProjectToken);
        var problem = await Json.ReadProblemAsync(response, (HttpStatusCode)expected);
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("detail").GetString()));
    }

    /// <summary>Writes raw bytes on a fresh connection; returns the whole response text, or null if closed unanswered.</summary>
    private async Task<string?> SendRawForResponseAsync(string raw)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(_server.Client.BaseAddress!.Host, _server.Client.BaseAddress.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.Latin1.GetBytes(raw));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                received.Write(buffer, 0, read);
                if (Encoding.ASCII.GetString(received.ToArray()).Contains("\r\n\r\n{", StringComparison.Ordinal)
                    && Encoding.ASCII.GetString(received.ToArray()).TrimEnd().EndsWith('}'))
                {
                    break;
                }
            }
        }
        catch (IOException)
        {
        }

        return received.Length == 0 ? null : Encoding.ASCII.GetString(received.ToArray());
    }

    /// <summary>Writes raw bytes on a fresh connection; returns the status code, or null if the server closed it.</summary>
    private async Task<int?> SendRawAsync(string raw)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(_server.Client.BaseAddress!.Host, _server.Client.BaseAddress.Port);
        var stream = client.GetStream();
        try
        {
            await stream.WriteAsync(Encoding.Latin1.GetBytes(raw));
        }
        catch (IOException)
        {
            return null; // refused mid-send (e.g. headers too large): fine
        }

        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                return null;
            }

            var line = Encoding.ASCII.GetString(buffer, 0, read).Split("\r\n")[0];
            return int.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null;
        }
    }
}
