using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using FastIngest.Tests.Infrastructure;
using FastIngest.Tests.Smoke;

namespace FastIngest.Tests.Upload;

/// <summary>
/// <c>fastingest upload</c> end to end: the real AOT binary as the client, a real server, CI-shaped environments.
/// </summary>
public abstract class UploadCommandTests : IAsyncLifetime
{
    protected abstract Task<TestServer> StartServerAsync();

    private const string Passing = """<testsuite name="unit"><testcase classname="calc" name="adds"/><testcase classname="calc" name="subtracts"/></testsuite>""";
    private const string Failing = """<testsuites><testsuite name="unit"><testcase classname="calc" name="divides"><failure message="by zero">trace</failure></testcase></testsuite></testsuites>""";

    private readonly string _directory = Directory.CreateTempSubdirectory("fastingest-upload-").FullName;
    private TestServer _server = null!;
    private Tenant _tenant = null!;

    public async Task InitializeAsync()
    {
        _server = await StartServerAsync();
        _tenant = await _server.CreateTenantAsync("uploader");
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task InGitHubActionsTheRunTakesTheWorkflowRunJobBranchAndCommitAndTheStepSummaryIsWritten()
    {
        var reports = Reports("gh", ("TEST-a.xml", Passing), ("nested/TEST-b.xml", Failing));
        var summary = Path.Combine(_directory, "summary.md");
        var result = await RunAsync(["upload", reports], Env(
            ("GITHUB_ACTIONS", "true"), ("GITHUB_RUN_ID", "4242"), ("GITHUB_RUN_ATTEMPT", "2"), ("GITHUB_JOB", "unit-tests"),
            ("GITHUB_REF_NAME", "main"), ("GITHUB_SHA", "abcdef1234567890"), ("GITHUB_REPOSITORY", "acme/app"), ("GITHUB_STEP_SUMMARY", summary)));

        Assert.True(result.ExitCode == 0, result.ToString());
        var run = await RunAsync("gh-4242-2");
        Assert.Equal("unit-tests", run.GetProperty("shards")[0].GetProperty("shard").GetString());
        Assert.Equal(("main", "abcdef1234567890", "failed"), (run.GetProperty("branch").GetString(), run.GetProperty("commit_sha").GetString(), run.GetProperty("status").GetString()));
        Assert.Equal("https://github.com/acme/app/actions/runs/4242", run.GetProperty("build_url").GetString());
        var text = await File.ReadAllTextAsync(summary);
        Assert.Contains("**blocking**: `calc` / `divides`", text, StringComparison.Ordinal);
        Assert.Contains("/ui/projects/", text, StringComparison.Ordinal);
        Assert.DoesNotContain(_tenant.ProjectToken, result.Output + result.Errors + text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InGitLabTwoJobsOfOnePipelineAreItsShardsAndARerunOfAStepIsADuplicate()
    {
        var env = Env(("GITLAB_CI", "true"), ("CI_PIPELINE_ID", "77"), ("CI_COMMIT_REF_NAME", "dev"), ("CI_COMMIT_SHA", "0123456789abcdef"));
        var first = await RunAsync(["upload", Reports("gl1", ("a.xml", Passing))], env.Append(("CI_JOB_NAME", "test 1/2")).ToArray());
        var second = await RunAsync(["upload", Reports("gl2", ("b.xml", Failing))], env.Append(("CI_JOB_NAME", "test 2/2")).ToArray());
        var again = await RunAsync(["upload", Reports("gl1", ("a.xml", Passing))], env.Append(("CI_JOB_NAME", "test 1/2")).ToArray());

        Assert.True(first.ExitCode == 0 && second.ExitCode == 0, first + "\n" + second);
        var run = await RunAsync("gl-77");
        var shards = run.GetProperty("shards").EnumerateArray().Select(s => (s.GetProperty("shard").GetString(), s.GetProperty("status").GetString()));
        Assert.Equal([("test-1/2", "passed"), ("test-2/2", "failed")], shards);
        Assert.Equal(("failed", 3), (run.GetProperty("status").GetString(), run.GetProperty("counts").GetProperty("total").GetInt32()));
        Assert.True(again.ExitCode == 0 && again.Output.Contains("duplicate", StringComparison.Ordinal), again.ToString());
        Assert.Equal(2, (await RunAsync("gl-77")).GetProperty("shard_count").GetInt32());
    }

    [Fact]
    public async Task AQuarantinedFailurePassesTheGateAndABlockingOneFailsIt()
    {
        var reports = Reports("gate", ("r.xml", Failing));
        var blocked = await RunAsync(["upload", "--run-id", "gate-1", "--fail-on-test-failures", reports], Env());
        using (var put = await _server.PostAsync($"/v1/projects/{_tenant.ProjectId}/quarantine", _tenant.OrgToken,
            new { suite = "calc", name = "divides", reason = "flaky division" }))
        {
            await Json.ReadAsync(put, HttpStatusCode.Created);
        }

        var quarantined = await RunAsync(["upload", "--run-id", "gate-2", "--fail-on-test-failures", reports], Env());

        Assert.True(blocked.ExitCode == 1, blocked.ToString());
        Assert.True(quarantined.ExitCode == 0, quarantined.ToString());
    }

    [Fact]
    public async Task ADeadServerNeverBreaksTheBuildUnlessStrictAndTheDeadlineHolds()
    {
        var reports = Reports("dead", ("r.xml", Passing));
        var dead = $"http://127.0.0.1:{AotBinary.FreePort()}";
        var watch = Stopwatch.StartNew();
        var lenient = await RunAsync(["upload", "--run-id", "dead-1", "--timeout", "3", reports], Env(("FASTINGEST_SERVER", dead)));
        var elapsed = watch.Elapsed;
        var strict = await RunAsync(["upload", "--run-id", "dead-2", "--timeout", "2", "--strict", reports], Env(("FASTINGEST_SERVER", dead)));

        Assert.True(lenient.ExitCode == 0 && lenient.Errors.Contains("not uploaded", StringComparison.Ordinal), lenient.ToString());
        Assert.True(elapsed < TimeSpan.FromSeconds(20), $"gave up after {elapsed}");
        Assert.True(strict.ExitCode == 2, strict.ToString());
    }

    [Fact]
    public async Task A429WithRetryAfterIsWaitedForThenTheUploadSucceeds()
    {
        using var stub = new StubServer(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Type: application/problem+json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 93\r\nConnection: close\r\n\r\n"
            + """{"run_id":"stub-1","project_id":"p","duplicate":false,"failed_tests":0,"blocking_failures":0}""".PadRight(93));
        var watch = Stopwatch.StartNew();
        var result = await RunAsync(["upload", "--run-id", "stub-1", Reports("stub", ("r.xml", Passing))], Env(("FASTINGEST_SERVER", stub.Url)));

        Assert.True(result.ExitCode == 0 && result.Output.Contains("stored", StringComparison.Ordinal), result.ToString());
        Assert.Equal(2, stub.Requests);
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(3), $"did not wait for Retry-After (3 s, longer than the first backoff): {watch.Elapsed}");
    }

    [Fact]
    public async Task ABrokenOrForeignReportIsLeftOutTheRestIsUploadedAndTheGateDoesNotPassWhatItCouldNotSee()
    {
        var reports = Reports("mixed", ("good.xml", Passing), ("truncated.xml", "<testsuite name=\"x\"><testcase name="), ("coverage.xml", "<coverage/>"));
        var lenient = await RunAsync(["upload", "--run-id", "mixed-1", reports], Env());
        var gated = await RunAsync(["upload", "--run-id", "mixed-2", "--fail-on-test-failures", reports], Env());
        var nothing = await RunAsync(["upload", "--run-id", "mixed-3", "--fail-on-test-failures", Path.Combine(_directory, "no-such-dir")], Env());

        Assert.True(lenient.ExitCode == 0 && lenient.Errors.Contains("truncated.xml is left out", StringComparison.Ordinal), lenient.ToString());
        Assert.Equal(2, (await RunAsync("mixed-1")).GetProperty("counts").GetProperty("total").GetInt32());
        Assert.True(gated.ExitCode == 1, gated.ToString());
        Assert.True(nothing.ExitCode == 1, nothing.ToString());
    }

    [Fact]
    public async Task ATestThatPassedOnItsLastAttemptDoesNotFailTheGateEvenWhenTheServerIsDown()
    {
        var reports = Reports("retried", ("r.xml", """<testsuite name="u"><testcase classname="c" name="t"><failure message="x"/></testcase><testcase classname="c" name="t"/></testsuite>"""));
        var result = await RunAsync(["upload", "--run-id", "retried-1", "--timeout", "2", "--fail-on-test-failures", reports],
            Env(("FASTINGEST_SERVER", $"http://127.0.0.1:{AotBinary.FreePort()}")));
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Theory]
    [InlineData("--bogus")]
    [InlineData("--server", "ci.example.com", "x.xml")]
    [InlineData("--server", "https://user:secret@ci.example.com", "x.xml")]
    [InlineData("--timeout", "0", "x.xml")]
    public async Task AUsageErrorIsExit64(params string[] args)
    {
        var result = await RunAsync(["upload", .. args], Env());
        Assert.True(result.ExitCode == 64, result.ToString());
    }

    private string Reports(string name, params (string Path, string Xml)[] files)
    {
        var root = Path.Combine(_directory, name);
        foreach (var (path, xml) in files)
        {
            var full = Path.Combine(root, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, xml);
        }

        return root;
    }

    private (string, string)[] Env(params (string, string)[] extra) =>
        [("FASTINGEST_SERVER", _server.Client.BaseAddress!.ToString().TrimEnd('/')), ("FASTINGEST_TOKEN", _tenant.ProjectToken), .. extra];

    private async Task<System.Text.Json.JsonElement> RunAsync(string runId)
    {
        using var response = await _server.SendAsync(HttpMethod.Get, $"/v1/runs/{runId}", _tenant.ProjectToken);
        return await Json.ReadAsync(response, HttpStatusCode.OK);
    }

    private static async Task<Result> RunAsync(string[] args, (string Name, string Value)[] env)
    {
        var start = new ProcessStartInfo(AotBinary.Path) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // A clean environment: the test machine's own CI variables must not leak in.
        start.Environment.Clear();
        start.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH");
        start.Environment["HOME"] = Path.GetTempPath();
        foreach (var (name, value) in env)
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return new Result(process.ExitCode, await output, await errors);
    }

    private sealed record Result(int ExitCode, string Output, string Errors)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout: {Output}\nstderr: {Errors}";
    }

    /// <summary>Answers each connection with the next canned response, after reading the request.</summary>
    private sealed class StubServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly Task _serving;
        private int _requests;

        public StubServer(params string[] responses)
        {
            _listener.Start();
            _serving = Task.Run(async () =>
            {
                foreach (var response in responses)
                {
                    using var client = await _listener.AcceptTcpClientAsync();
                    using var stream = client.GetStream();
                    var buffer = new byte[64 * 1024];
                    var received = new StringBuilder();
                    int read;
                    while ((read = await stream.ReadAsync(buffer)) > 0)
                    {
                        received.Append(Encoding.Latin1.GetString(buffer, 0, read));
                        if (RequestComplete(received.ToString()))
                        {
                            break;
                        }
                    }

                    Interlocked.Increment(ref _requests);
                    await stream.WriteAsync(Encoding.ASCII.GetBytes(response));
                }
            });
        }

        public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

        public int Requests => Volatile.Read(ref _requests);

        public void Dispose() => _listener.Stop();

        private static bool RequestComplete(string text)
        {
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end < 0)
            {
                return false;
            }

            var header = text[..end];
            var length = header.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
            return length is not null && text.Length - end - 4 >= int.Parse(length["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}

public sealed class SqliteUploadCommandTests : UploadCommandTests
{
    protected override Task<TestServer> StartServerAsync() => TestServer.StartAsync();
}

public sealed class PostgresUploadCommandTests : UploadCommandTests
{
    protected override async Task<TestServer> StartServerAsync() => await TestServer.StartAsync(postgres: await PostgresCluster.CreateDatabaseAsync("upload"));
}
