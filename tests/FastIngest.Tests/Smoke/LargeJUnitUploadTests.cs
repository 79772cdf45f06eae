using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using FastIngest.Tests.Infrastructure;
using Xunit.Abstractions;

namespace FastIngest.Tests.Smoke;

/// <summary>
/// A 100 MB JUnit report, generated while it is sent (never held by the test), streamed into the AOT binary:
/// the server's peak resident memory must stay within a fixed bound far below the file's size.
/// </summary>
public sealed class LargeJUnitUploadTests
{
    private const int Cases = 100_000;
    private const long PeakRssBoundBytes = 256L * 1024 * 1024;
    private readonly ITestOutputHelper _output;

    public LargeJUnitUploadTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task HundredMegabyteReportIsStoredWithinAFixedMemoryBound()
    {
        await using var binary = AotBinary.Start();
        using var client = new HttpClient { BaseAddress = binary.Address, Timeout = TimeSpan.FromMinutes(5) };
        await binary.WaitUntilHealthyAsync(client);
        var admin = (await File.ReadAllTextAsync(Path.Combine(binary.DataDirectory, "admin-token"))).Trim();
        var token = await CreateIngestTokenAsync(client, admin);
        var rssBefore = PeakRss(binary.Id);

        var report = new GeneratedReport(Cases);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest?run_id=huge-1&timestamp=2026-01-12T10:00:00Z") { Content = report };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var watch = Stopwatch.StartNew();
        using var response = await client.SendAsync(request);
        watch.Stop();

        var accepted = await Json.ReadAsync(response, HttpStatusCode.Created);
        Assert.True(report.BytesWritten > 100_000_000, $"the report was only {report.BytesWritten} bytes");
        Assert.Equal(Cases, accepted.GetProperty("test_cases").GetInt32());
        Assert.Equal(Cases / 10, accepted.GetProperty("counts").GetProperty("failed").GetInt32());
        var peak = PeakRss(binary.Id);
        _output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{report.BytesWritten / 1e6:F1} MB, {Cases} cases in {watch.Elapsed.TotalSeconds:F2} s = {Cases / watch.Elapsed.TotalSeconds:F0} cases/s, " +
            $"{report.BytesWritten / 1e6 / watch.Elapsed.TotalSeconds:F1} MB/s; peak RSS {rssBefore / 1048576} MiB before, {peak / 1048576} MiB after"));
        Assert.True(peak < PeakRssBoundBytes, $"peak RSS {peak / 1048576} MiB crossed the {PeakRssBoundBytes / 1048576} MiB bound");

        using var page = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/v1/runs/huge-1/tests?status=failed&limit=1")
        {
            Headers = { Authorization = new("Bearer", token) },
        });
        var failed = (await Json.ReadAsync(page, HttpStatusCode.OK)).GetProperty("tests")[0];
        Assert.Equal("case_000009", failed.GetProperty("name").GetString());
        Assert.Equal(TestCaseLimitsMessage, failed.GetProperty("failure_message").GetString()!.Length);
    }

    private const int TestCaseLimitsMessage = FastIngest.TestCases.TestCaseLimits.MaxFailureMessageLength;

    private static long PeakRss(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").Single(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    private static async Task<string> CreateIngestTokenAsync(HttpClient client, string admin)
    {
        async Task<System.Text.Json.JsonElement> Post(string path, string body)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin);
            using var response = await client.SendAsync(request);
            return await Json.ReadAsync(response, HttpStatusCode.Created);
        }

        var org = (await Post("/v1/orgs", """{"name":"big"}""")).GetProperty("id").GetString();
        var project = (await Post("/v1/projects", $$"""{"org_id":"{{org}}","name":"big"}""")).GetProperty("id").GetString();
        return (await Post("/v1/tokens", $$"""{"project_id":"{{project}}"}""")).GetProperty("token").GetString()!;
    }

    /// <summary>
    /// Surefire-shaped cases with the bulk real reports have: about 700 bytes of system-out per case, and every
    /// tenth case failing with a 6 KB stack trace (cut to the message limit when stored).
    /// </summary>
    private sealed class GeneratedReport : HttpContent
    {
        private static readonly string s_output = new('o', 700);
        private static readonly string s_trace = string.Concat(Enumerable.Repeat("\tat com.acme.Service.call(Service.java:42)\n", 150));
        private readonly int _cases;

        public GeneratedReport(int cases)
        {
            _cases = cases;
            Headers.ContentType = new MediaTypeHeaderValue("application/xml");
        }

        public long BytesWritten { get; private set; }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var chunk = new StringBuilder(256 * 1024);
            chunk.Append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"com.acme.HugeTest\" tests=\"100000\">\n");
            for (var i = 0; i < _cases; i++)
            {
                chunk.Append(CultureInfo.InvariantCulture, $"  <testcase name=\"case_{i:D6}\" classname=\"com.acme.HugeTest{i % 50}\" time=\"0.0{i % 10}\">");
                if (i % 10 == 9)
                {
                    chunk.Append("<failure type=\"java.lang.AssertionError\">").Append(s_trace).Append("</failure>");
                }

                chunk.Append("<system-out><![CDATA[").Append(s_output).Append("]]></system-out></testcase>\n");
                if (chunk.Length > 200 * 1024)
                {
                    await FlushAsync(stream, chunk);
                }
            }

            chunk.Append("</testsuite>\n");
            await FlushAsync(stream, chunk);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false; // sent chunked, as a CI uploader streaming a file it is still writing would
        }

        private async Task FlushAsync(Stream stream, StringBuilder chunk)
        {
            var bytes = Encoding.UTF8.GetBytes(chunk.ToString());
            BytesWritten += bytes.Length;
            await stream.WriteAsync(bytes);
            chunk.Clear();
        }
    }
}
