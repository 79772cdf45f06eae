using System.Net;
using System.Text;
using System.Text.Json;
using FastIngest.Tests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace FastIngest.Tests.TestCases;

public sealed class JUnitUploadTests : IAsyncLifetime
{
    private TestServer _server = null!;
    private Tenant _tenant = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync(configure: o => o with { MaxJUnitXmlBytes = 4 * 1024 * 1024 });
        _tenant = await _server.CreateTenantAsync("junit");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<JsonElement> TestsOfAsync(string runId, string query = "")
    {
        using var response = await _server.SendAsync(HttpMethod.Get, $"/v1/runs/{runId}/tests{query}", _tenant.ProjectToken);
        return await Json.ReadAsync(response, HttpStatusCode.OK);
    }

    private async Task<JsonElement> RunAsync(string runId)
    {
        using var response = await _server.SendAsync(HttpMethod.Get, $"/v1/runs/{runId}", _tenant.ProjectToken);
        return await Json.ReadAsync(response, HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("surefire.xml", 8, "failed", 6, 2, 3, 1)]
    [InlineData("pytest.xml", 5, "failed", 4, 2, 1, 1)]
    [InlineData("jest.xml", 3, "failed", 3, 2, 1, 0)]
    [InlineData("go-junit-report.xml", 3, "failed", 3, 1, 1, 1)]
    [InlineData("nested-nunit.xml", 3, "failed", 3, 2, 1, 0)]
    public async Task EachDialectIsStoredWithCountsDerivedFromItsCases(string file, int cases, string status,
        int total, int passed, int failed, int skipped)
    {
        var runId = "dialect-" + Path.GetFileNameWithoutExtension(file);
        using var response = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, JUnitUploads.Report(file),
            $"run_id={runId}&timestamp=2026-01-12T10:00:00Z");

        var accepted = await Json.ReadAsync(response, HttpStatusCode.Created);
        Assert.Equal(cases, accepted.GetProperty("test_cases").GetInt32());
        var run = await RunAsync(runId);
        Assert.Equal(status, run.GetProperty("status").GetString());
        var counts = run.GetProperty("counts");
        Assert.Equal([total, passed, failed, skipped],
            new[] { "total", "passed", "failed", "skipped" }.Select(k => counts.GetProperty(k).GetInt32()));
        Assert.Equal(cases, (await TestsOfAsync(runId)).GetProperty("tests").GetArrayLength());
    }

    [Fact]
    public async Task RetriedUploadIsADuplicateAndNeverDoubleCountsItsCases()
    {
        var report = JUnitUploads.Report("surefire.xml");
        using var first = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, report, "run_id=retry-1&commit_sha=abcdef1");
        await Json.ReadAsync(first, HttpStatusCode.Created);

        // The retry arrives later; without a timestamp anywhere, the server's choice must not make it a conflict.
        var retries = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ =>
            JUnitUploads.PostAsync(_server, _tenant.ProjectToken, JUnitUploads.Gzip(report), "run_id=retry-1&commit_sha=abcdef1", contentEncoding: "gzip")));

        foreach (var retry in retries)
        {
            Assert.True((await Json.ReadAsync(retry, HttpStatusCode.OK)).GetProperty("duplicate").GetBoolean());
            retry.Dispose();
        }

        Assert.Equal(8, (await TestsOfAsync("retry-1")).GetProperty("tests").GetArrayLength());
        Assert.Equal(6, (await RunAsync("retry-1")).GetProperty("counts").GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task SameRunIdWithADifferentReportIsAConflictAndKeepsTheStoredCases()
    {
        using var first = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, JUnitUploads.Report("jest.xml"), "run_id=conflict-1");
        await Json.ReadAsync(first, HttpStatusCode.Created);

        using var second = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, JUnitUploads.Report("pytest.xml"), "run_id=conflict-1");

        await Json.ReadProblemAsync(second, HttpStatusCode.Conflict);
        var tests = (await TestsOfAsync("conflict-1")).GetProperty("tests");
        Assert.Equal(3, tests.GetArrayLength());
        Assert.Equal("Button renders its label", tests[0].GetProperty("name").GetString());
    }

    [Fact]
    public async Task RunFieldsComeFromHeadersAsWellAsTheQuery()
    {
        var headers = new Dictionary<string, string>
        {
            ["X-Run-Id"] = "from-headers",
            ["X-Run-Branch"] = "main",
            ["X-Run-Commit-Sha"] = "ABCDEF1234",
            ["X-Run-Status"] = "passed",
            ["X-Run-Duration-Ms"] = "999",
        };
        using var response = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, JUnitUploads.Report("go-junit-report.xml"), "",
            headers: headers);
        await Json.ReadAsync(response, HttpStatusCode.Created);

        var run = await RunAsync("from-headers");
        Assert.Equal("main", run.GetProperty("branch").GetString());
        Assert.Equal("abcdef1234", run.GetProperty("commit_sha").GetString());
        Assert.Equal("passed", run.GetProperty("status").GetString()); // stated by the caller, not derived
        Assert.Equal(999, run.GetProperty("duration_ms").GetInt64());
        Assert.Equal("2026-01-12T10:00:00.000Z", run.GetProperty("timestamp").GetString()); // from the file
    }

    [Fact]
    public async Task BadRunFieldsAreAllReportedBeforeTheBodyIsRead()
    {
        using var response = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, JUnitUploads.Report("jest.xml"),
            "status=green&duration_ms=-1&timestamp=yesterday&commit_sha=xyz&colour=red",
            headers: new Dictionary<string, string> { ["X-Run-Branch"] = "main" });

        var problem = await Json.ReadProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal(["colour", "run_id", "status", "duration_ms", "timestamp", "commit_sha"], Json.ErrorFields(problem));
    }

    [Fact]
    public async Task QueryAndHeaderThatDisagreeAreRefused()
    {
        using var response = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, JUnitUploads.Report("jest.xml"), "run_id=a",
            headers: new Dictionary<string, string> { ["X-Run-Id"] = "b" });

        var problem = await Json.ReadProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal(["run_id"], Json.ErrorFields(problem));
    }

    [Theory]
    [InlineData("<testsuite><testcase name=\"t\"></testsuite>", "malformed XML")]
    [InlineData("<testsuite><testcase classname=\"c\"/></testsuite>", "line 1, column 13: <testcase> has no name attribute")]
    [InlineData("<report/>", "the root element is <report>")]
    [InlineData("<!DOCTYPE t [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><testsuite name=\"&x;\"/>", "DTD is prohibited")]
    public async Task UnusableReportsGet400NamingTheProblem(string xml, string expected)
    {
        using var response = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, xml, "run_id=bad-report");

        var problem = await Json.ReadProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains(expected, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        using var missing = await _server.SendAsync(HttpMethod.Get, "/v1/runs/bad-report", _tenant.ProjectToken);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode); // nothing of it was stored
    }

    [Fact]
    public async Task ShapesThatWouldBlowUpTheXmlReaderAreRefusedOrCut()
    {
        var deep = "<testsuite name=\"s\">" + string.Concat(Enumerable.Repeat("<x>", 40)) + string.Concat(Enumerable.Repeat("</x>", 40)) + "</testsuite>";
        using (var response = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, deep, "run_id=deep"))
        {
            var problem = await Json.ReadProblemAsync(response, HttpStatusCode.BadRequest);
            Assert.Contains("nested deeper than 32 levels", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        var wide = "<testsuite " + string.Concat(Enumerable.Range(0, 120_000).Select(i => $"a{i}=\"\" ")) + "/>";
        using (var response = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, wide, "run_id=wide"))
        {
            var problem = await Json.ReadProblemAsync(response, HttpStatusCode.BadRequest);
            Assert.Contains("a tag is longer than 1048576 bytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        // Two 1.5 MB CDATA sections: the reader would hold each whole; they are cut in the stream and it still reads.
        var log = new string('x', 1_500_000);
        var bulky = $"<testsuite name=\"s\"><testcase name=\"t\"><failure><![CDATA[{log}]]></failure><system-out><![CDATA[{log}]]></system-out></testcase></testsuite>";
        using (var response = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, bulky, "run_id=bulky"))
        {
            await Json.ReadAsync(response, HttpStatusCode.Created);
        }

        var stored = (await TestsOfAsync("bulky")).GetProperty("tests")[0];
        Assert.Equal(FastIngest.TestCases.TestCaseLimits.MaxFailureMessageLength, stored.GetProperty("failure_message").GetString()!.Length);
    }

    [Fact]
    public async Task GzipBombIsStoppedAtTheDecompressedLimit()
    {
        // 64 MiB of whitespace inside a comment compresses to about 64 KiB; the server stops at its 4 MiB cap.
        var bomb = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(bomb, System.IO.Compression.CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gzip.Write("<testsuite name=\"s\"><!--"u8);
            var spaces = new byte[1024 * 1024];
            spaces.AsSpan().Fill((byte)' ');
            for (var i = 0; i < 64; i++)
            {
                gzip.Write(spaces);
            }

            gzip.Write("--></testsuite>"u8);
        }

        Assert.True(bomb.Length < 1024 * 1024);
        using var response = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, bomb.ToArray(), "run_id=bomb", contentEncoding: "gzip");

        var problem = await Json.ReadProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Contains("decompressed report exceeds the limit of 4194304 bytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task GzipThatInflatesFarBeyondRealReportsIsStoppedAt64MiBWhateverTheDecompressedLimit()
    {
        // The CPU budget: past 64 MiB a gzip body may inflate 128 times its size at most (real reports: 19-112x).
        await using var server = await TestServer.StartAsync();
        var tenant = await server.CreateTenantAsync("inflation");
        var bomb = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(bomb, System.IO.Compression.CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gzip.Write("<testsuite name=\"s\"><!--"u8);
            var spaces = new byte[1024 * 1024];
            spaces.AsSpan().Fill((byte)' ');
            for (var i = 0; i < 80; i++)
            {
                gzip.Write(spaces);
            }

            gzip.Write("--></testsuite>"u8);
        }

        Assert.True(bomb.Length * 128 < 64 * 1024 * 1024, $"the bomb is {bomb.Length} bytes");
        using var response = await JUnitUploads.PostAsync(server, tenant.ProjectToken, bomb.ToArray(), "run_id=bomb", contentEncoding: "gzip");

        var problem = await Json.ReadProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Contains($"decompressed report exceeds the limit of {64 * 1024 * 1024} bytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(100_000L, 64L * 1024 * 1024)]
    [InlineData(1024L * 1024, 128L * 1024 * 1024)]
    [InlineData(3L * 1024 * 1024, 384L * 1024 * 1024)]
    [InlineData(100L * 1024 * 1024, 512L * 1024 * 1024)]
    public void InflationLimitIs64MiBThen128TimesTheBodyUpToTheDecompressedLimit(long compressed, long expected) =>
        Assert.Equal(expected, FastIngest.TestCases.JUnitUpload.InflationLimit(compressed, 512L * 1024 * 1024));

    [Fact]
    public async Task BodyThatIsNotGzipButSaysSoGets400()
    {
        using var response = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, JUnitUploads.Report("jest.xml"), "run_id=not-gzip",
            contentEncoding: "gzip");

        var problem = await Json.ReadProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains("not valid gzip", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownContentEncodingGets415()
    {
        using var response = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, JUnitUploads.Report("jest.xml"), "run_id=br",
            contentEncoding: "br");

        await Json.ReadProblemAsync(response, HttpStatusCode.UnsupportedMediaType);
    }

    [Fact]
    public async Task TextXmlWithACharsetIsAcceptedToo()
    {
        using var response = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, JUnitUploads.Report("jest.xml"), "run_id=text-xml",
            contentType: "text/xml; charset=utf-8");

        await Json.ReadAsync(response, HttpStatusCode.Created);
    }

    [Fact]
    public async Task RunWithTenThousandCasesIsOneTransaction()
    {
        var xml = new StringBuilder("<testsuite name=\"big\">");
        for (var i = 0; i < 10_000; i++)
        {
            xml.Append(System.Globalization.CultureInfo.InvariantCulture, $"<testcase classname=\"Big\" name=\"case{i}\" time=\"0.001\"/>");
        }

        xml.Append("</testsuite>");
        var before = await MetricsAsync();

        using var response = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, xml.ToString(), "run_id=ten-thousand");

        Assert.Equal(10_000, (await Json.ReadAsync(response, HttpStatusCode.Created)).GetProperty("test_cases").GetInt32());
        var after = await MetricsAsync();
        Assert.Equal(Sample(before, "fastingest_ingest_batch_size_count") + 1, Sample(after, "fastingest_ingest_batch_size_count"));
        Assert.Equal(Sample(before, "fastingest_test_cases_stored_total") + 10_000, Sample(after, "fastingest_test_cases_stored_total"));
        Assert.Equal(10_000, CountStoredCases());
    }

    [Fact]
    public async Task DeletingTheProjectDeletesItsTestCases()
    {
        using var upload = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, JUnitUploads.Report("surefire.xml"), "run_id=to-delete");
        await Json.ReadAsync(upload, HttpStatusCode.Created);
        Assert.Equal(8, CountStoredCases());

        using var ask = await _server.SendAsync(HttpMethod.Delete, $"/v1/projects/{_tenant.ProjectId}", _tenant.OrgToken);
        var confirm = (await Json.ReadAsync(ask, HttpStatusCode.Accepted)).GetProperty("confirm_token").GetString()!;
        using var request = new HttpRequestMessage(HttpMethod.Delete, $"/v1/projects/{_tenant.ProjectId}");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", _tenant.OrgToken);
        request.Headers.Add("X-Confirm-Token", confirm);
        using var delete = await _server.Client.SendAsync(request);
        await _server.FinishJobAsync(delete, _tenant.OrgToken);

        Assert.Equal(0, CountStoredCases());
    }

    [Fact]
    public async Task PurgeDeletesTheTestCasesOfPurgedRunsInBoundedChunks()
    {
        var old = Encoding.UTF8.GetBytes("<testsuite name=\"s\">" + string.Concat(Enumerable.Range(0, 10).Select(i => $"<testcase name=\"t{i}\"/>")) + "</testsuite>");
        using (var a = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, old, "run_id=old&timestamp=2025-06-01T00:00:00Z"))
        {
            await Json.ReadAsync(a, HttpStatusCode.Created);
        }

        using (var b = await JUnitUploads.PostAsync(_server, _tenant.ProjectToken, JUnitUploads.Report("jest.xml"), "run_id=new&timestamp=2026-06-01T00:00:00Z"))
        {
            await Json.ReadAsync(b, HttpStatusCode.Created);
        }

        var removal = _server.Service<FastIngest.Storage.IDataRemovalStore>();
        var projectKey = (await _server.Service<FastIngest.Storage.ITenantStore>().FindProjectAsync(_tenant.ProjectId))!.Key;
        var cutoff = DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds();

        // Chunks of at most 4 cases, only from runs before the cut-off; the runs themselves stay until their batch.
        var chunks = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            chunks.Add(await removal.DeleteTestCasesBatchAsync(projectKey, cutoff, 1000, 4));
        }

        Assert.Equal([4, 4, 2, 0], chunks);
        Assert.Equal(3, CountStoredCases());
        Assert.Equal(0, (await TestsOfAsync("old")).GetProperty("tests").GetArrayLength());

        await _server.Service<FastIngest.Destructive.RunPurger>().PurgeAsync(projectKey, cutoff);

        using var gone = await _server.SendAsync(HttpMethod.Get, "/v1/runs/old/tests", _tenant.ProjectToken);
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        Assert.Equal(3, (await TestsOfAsync("new")).GetProperty("tests").GetArrayLength());
    }

    private long CountStoredCases()
    {
        using var connection = new SqliteConnection($"Data Source={_server.Options.DatabasePath};Mode=ReadOnly");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM executions;";
        return (long)command.ExecuteScalar()!;
    }

    private async Task<string> MetricsAsync()
    {
        using var response = await _server.Client.GetAsync("/metrics");
        return await response.Content.ReadAsStringAsync();
    }

    private static double Sample(string metrics, string name) =>
        double.Parse(metrics.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal)).Split(' ')[1],
            System.Globalization.CultureInfo.InvariantCulture);
}
