using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Xml;

namespace FastIngest.Upload;

/// <summary>
/// <c>fastingest upload [options] &lt;file|directory|glob&gt;...</c>: sends JUnit XML reports to a FastIngest server as
/// one run (several files of one invocation are combined into one report), with the CI's metadata, gzip, retries
/// with backoff and jitter within a deadline, and exit codes that never break a build by accident:
/// <list type="bullet">
/// <item>0: uploaded, or could not be uploaded (a warning says why; the build goes on);</item>
/// <item>1: with <c>--fail-on-test-failures</c>, a failed test that is not quarantined;</item>
/// <item>2: with <c>--strict</c>, the upload could not be completed;</item>
/// <item>64: a usage error.</item>
/// </list>
/// The token is read from <c>--token</c> or <c>FASTINGEST_TOKEN</c> and never printed.
/// </summary>
public static class UploadCommand
{
    public const int Uploaded = 0;
    public const int TestsFailed = 1;
    public const int NotUploaded = 2;
    public const int UsageError = 64;

    public const string Usage = """
        usage: fastingest upload [options] <file|directory|glob>...
          --server URL               FASTINGEST_SERVER   the server (e.g. https://fastingest.example.com)
          --token T                  FASTINGEST_TOKEN    a project token with scope ingest (never printed)
          --run-id ID                                    the run (default: from the CI, see README)
          --shard NAME                                   this job's part of the run (default: the CI job's name)
          --branch NAME, --commit SHA                    default: from the CI
          --timeout SECONDS                              the whole upload's deadline, retries included (default 60)
          --strict                                       exit 2 when the upload cannot be completed (default: warn, exit 0)
          --fail-on-test-failures                        exit 1 when a test failed that is not quarantined
          --dry-run                                      read the reports and show what would be sent; send nothing
        A directory means every *.xml under it; a glob may use * and ** (e.g. 'build/**/TEST-*.xml').
        """;

    public static async Task<int> RunAsync(IReadOnlyList<string> args, Func<string, string?> env, TextWriter output, TextWriter errors)
    {
        if (args is ["--help"] or ["-h"])
        {
            await output.WriteLineAsync(Usage);
            return Uploaded;
        }

        if (!UploadOptions.TryParse(args, env, out var options, out var usage))
        {
            await errors.WriteLineAsync($"fastingest upload: {usage}\n{Usage}");
            return UsageError;
        }

        try
        {
            return await UploadAsync(options!, env, output, errors);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Whatever went wrong, the build is not broken by accident: the same rules as any failed upload.
            return await GiveUpAsync(options!, errors, $"{e.GetType().Name}: {e.Message}", localFailures: 0, unreadable: options!.FailOnTestFailures);
        }
    }

    private static async Task<int> UploadAsync(UploadOptions options, Func<string, string?> env, TextWriter output, TextWriter errors)
    {
        var ci = CiEnvironment.Detect(env);
        var baseRunId = options.RunId ?? ci.RunId;
        if (baseRunId is null)
        {
            await errors.WriteLineAsync($"fastingest upload: no --run-id given and no CI detected to take one from.\n{Usage}");
            return UsageError;
        }

        // Every job of one pipeline attempt uploads to the same run id, each as its own shard; the server merges them.
        var runId = CiEnvironment.Sanitize(baseRunId);
        var shard = (options.Shard ?? ci.Shard) is { Length: > 0 } named ? CiEnvironment.Sanitize(named) : null; // --shard "": none
        var branch = options.Branch ?? ci.Branch;
        if (branch is not null && Ingest.RunFieldRules.BranchError(branch) is { } branchProblem)
        {
            await errors.WriteLineAsync($"fastingest upload: warning: the branch is left out: it {branchProblem}");
            branch = null;
        }

        var commit = options.Commit ?? ci.Commit;
        var files = ReportFiles.Expand(options.Paths, out var missing);
        foreach (var path in missing)
        {
            await errors.WriteLineAsync($"fastingest upload: warning: nothing matches '{path}'");
        }

        if (files.Count == 0)
        {
            // No report at all usually means the tests never ran (a compile error): a gate cannot call that a pass.
            return await GiveUpAsync(options, errors, "no report files were found", localFailures: 0, unreadable: true);
        }

        using var combined = new TemporaryFile();
        var report = CombinedReport.Write(files, combined.Stream);
        foreach (var (file, problem) in report.Unreadable)
        {
            await errors.WriteLineAsync($"fastingest upload: warning: {file} is left out: {problem}");
        }

        if (report.Unreadable.Count == files.Count)
        {
            return await GiveUpAsync(options, errors, "no report file could be read", localFailures: 0, unreadable: true);
        }

        await output.WriteLineAsync(
            $"fastingest upload: {files.Count} file(s), {report.Tests} test(s), {report.Failures.Count} failed; run '{runId}'"
            + $"{(shard is null ? "" : $", shard '{shard}'")}"
            + $"{(branch is null ? "" : $", branch '{branch}'")}{(commit is null ? "" : $", commit {commit}")} (CI: {ci.Provider})");
        if (options.DryRun)
        {
            await output.WriteLineAsync($"fastingest upload: dry run: {combined.Stream.Length} bytes of gzip would go to {options.Server ?? "(no --server)"}/v1/ingest");
            return Uploaded;
        }

        if (options.Server is null || options.Token is null)
        {
            return await GiveUpAsync(options, errors, "no server or token (set FASTINGEST_SERVER and FASTINGEST_TOKEN)", report.Failures.Count,
                report.Unreadable.Count > 0);
        }

        var query = new StringBuilder($"run_id={Uri.EscapeDataString(runId)}");
        if (shard is not null)
        {
            query.Append("&shard=").Append(Uri.EscapeDataString(shard));
        }

        if (branch is not null)
        {
            query.Append("&branch=").Append(Uri.EscapeDataString(branch));
        }

        if (commit is not null && Ingest.RunFieldRules.NormalizeCommitSha(commit) is not null)
        {
            query.Append("&commit_sha=").Append(Uri.EscapeDataString(commit));
        }

        if (ci.BuildUrl is { } buildUrl && Ingest.RunFieldRules.BuildUrlError(buildUrl) is null)
        {
            query.Append("&build_url=").Append(Uri.EscapeDataString(buildUrl));
        }

        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(options.TimeoutSeconds);
        var sent = await UploadClient.SendAsync(new Uri(options.Server.TrimEnd('/') + "/v1/ingest?" + query), options.Token, combined.Stream, deadline, errors);
        if (sent.Answer is not { } answer)
        {
            return await GiveUpAsync(options, errors, sent.Problem ?? "the upload did not complete", report.Failures.Count, report.Unreadable.Count > 0);
        }

        var blocking = answer.TryGetProperty("blocking_failures", out var b) && b.ValueKind == JsonValueKind.Number ? b.GetInt64() : report.Failures.Count;
        var quarantined = answer.TryGetProperty("quarantined_failures", out var q) && q.ValueKind == JsonValueKind.Number ? q.GetInt64() : 0;
        var projectId = answer.TryGetProperty("project_id", out var p) ? p.GetString() : null;
        var duplicate = answer.TryGetProperty("duplicate", out var d) && d.GetBoolean();
        await output.WriteLineAsync($"fastingest upload: stored{(duplicate ? " (already stored: duplicate)" : "")}: {blocking} blocking failure(s), {quarantined} quarantined");
        var runUrl = $"{options.Server.TrimEnd('/')}/ui/projects/{Uri.EscapeDataString(projectId ?? "")}/runs/{Uri.EscapeDataString(runId)}";
        try
        {
            await StepSummary.AppendAsync(env, report, runId, blocking, quarantined, runUrl, options.Server, options.Token, projectId);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or JsonException)
        {
            await errors.WriteLineAsync($"fastingest upload: warning: the step summary could not be written: {e.Message}");
        }

        // A report that could not be read may have held failures: a gate does not pass what it could not see.
        return options.FailOnTestFailures && (blocking > 0 || report.Unreadable.Count > 0) ? TestsFailed : Uploaded;
    }

    /// <summary>
    /// The upload could not be completed: a warning and exit 0 (2 with --strict). With --fail-on-test-failures the
    /// reports themselves still decide: a failed test fails the build (quarantine unknown, so every failure blocks).
    /// </summary>
    private static async Task<int> GiveUpAsync(UploadOptions options, TextWriter errors, string why, int localFailures, bool unreadable = false)
    {
        await errors.WriteLineAsync($"fastingest upload: warning: not uploaded: {why}");
        if (options.Strict)
        {
            return NotUploaded;
        }

        return options.FailOnTestFailures && (localFailures > 0 || unreadable) ? TestsFailed : Uploaded;
    }

    /// <summary>A private temporary file, deleted when disposed.</summary>
    private sealed class TemporaryFile : IDisposable
    {
        public FileStream Stream { get; } = new(Path.GetTempFileName(), new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.ReadWrite,
            Options = FileOptions.DeleteOnClose,
        });

        public void Dispose() => Stream.Dispose();
    }
}

/// <summary>The uploader's flags, with their environment fallbacks.</summary>
public sealed record UploadOptions(IReadOnlyList<string> Paths, string? Server, string? Token, string? RunId, string? Shard, string? Branch,
    string? Commit, int TimeoutSeconds, bool Strict, bool FailOnTestFailures, bool DryRun)
{
    public static bool TryParse(IReadOnlyList<string> args, Func<string, string?> env, out UploadOptions? options, out string? error)
    {
        options = null;
        error = null;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var flags = new HashSet<string>(StringComparer.Ordinal);
        var paths = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "--strict" or "--fail-on-test-failures" or "--dry-run")
            {
                flags.Add(arg);
            }
            else if (arg is "--server" or "--token" or "--run-id" or "--shard" or "--branch" or "--commit" or "--timeout")
            {
                if (i + 1 >= args.Count)
                {
                    error = $"{arg} needs a value";
                    return false;
                }

                values[arg] = args[++i];
            }
            else if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                error = $"unknown option '{arg}'";
                return false;
            }
            else
            {
                paths.Add(arg);
            }
        }

        if (paths.Count == 0)
        {
            error = "name at least one report file, directory or glob";
            return false;
        }

        var timeout = 60;
        if (values.TryGetValue("--timeout", out var timeoutText)
            && (!int.TryParse(timeoutText, NumberStyles.None, CultureInfo.InvariantCulture, out timeout) || timeout is < 1 or > 3600))
        {
            error = "--timeout must be a whole number of seconds from 1 to 3600";
            return false;
        }

        string? Value(string flag, string? variable) =>
            values.TryGetValue(flag, out var v) && v.Length > 0 ? v : variable is null ? null : env(variable) is { Length: > 0 } e ? e : null;
        if (Value("--server", "FASTINGEST_SERVER") is { } server
            && (!Uri.TryCreate(server, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.UserInfo.Length > 0))
        {
            error = $"the server must be an http(s) URL without credentials in it, e.g. https://fastingest.example.com (got '{(uri?.UserInfo.Length > 0 ? "<redacted>" : server)}')";
            return false;
        }

        options = new UploadOptions(paths, Value("--server", "FASTINGEST_SERVER"), Value("--token", "FASTINGEST_TOKEN"), Value("--run-id", null),
            Value("--shard", null), Value("--branch", null), Value("--commit", null), timeout, flags.Contains("--strict"),
            flags.Contains("--fail-on-test-failures"), flags.Contains("--dry-run"));
        return true;
    }
}

/// <summary>Report paths: files as given, every *.xml under a directory, and simple globs (<c>*</c>, <c>**</c>).</summary>
public static class ReportFiles
{
    /// <summary>Every file below, skipping directories the job may not read (a root-owned volume in the workspace).</summary>
    private static readonly EnumerationOptions s_everywhere = new() { RecurseSubdirectories = true, IgnoreInaccessible = true };

    public static List<string> Expand(IReadOnlyList<string> paths, out List<string> missing)
    {
        missing = [];
        var files = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var path in paths)
        {
            var before = files.Count;
            if (File.Exists(path))
            {
                files.Add(Path.GetFullPath(path));
            }
            else if (Directory.Exists(path))
            {
                files.UnionWith(Directory.EnumerateFiles(path, "*.xml", s_everywhere).Select(Path.GetFullPath));
            }
            else if (path.Contains('*', StringComparison.Ordinal) || path.Contains('?', StringComparison.Ordinal))
            {
                files.UnionWith(Glob(path));
            }

            if (files.Count == before)
            {
                missing.Add(path);
            }
        }

        return [.. files];
    }

    private static IEnumerable<string> Glob(string pattern)
    {
        var full = Path.GetFullPath(pattern.Replace("**", "§§", StringComparison.Ordinal).Replace("*", "¤", StringComparison.Ordinal))
            .Replace("§§", "**", StringComparison.Ordinal).Replace("¤", "*", StringComparison.Ordinal);
        var firstWild = full.IndexOfAny(['*', '?']);
        var root = full[..(full.LastIndexOf(Path.DirectorySeparatorChar, firstWild) + 1)];
        if (!Directory.Exists(root))
        {
            return [];
        }

        var regex = new System.Text.RegularExpressions.Regex("^" + System.Text.RegularExpressions.Regex.Escape(full)
            .Replace(@"\*\*/", "(.*/)?", StringComparison.Ordinal).Replace(@"\*\*", ".*", StringComparison.Ordinal)
            .Replace(@"\*", "[^/]*", StringComparison.Ordinal).Replace(@"\?", "[^/]", StringComparison.Ordinal) + "$");
        var options = full.Contains("**", StringComparison.Ordinal) ? s_everywhere : new EnumerationOptions { IgnoreInaccessible = true };
        return Directory.EnumerateFiles(root, "*", options).Select(Path.GetFullPath).Where(f => regex.IsMatch(f));
    }
}

/// <summary>
/// Several JUnit files combined into one gzip report (<c>&lt;testsuites&gt;</c> holding every file's suites), with
/// what the uploader needs to know without the server: how many tests, which failed by their last attempt, and
/// which files could not be read (each is read once on its own first, so one broken file is left out, not the
/// rest with it). <c>system-out</c>, <c>system-err</c> and <c>properties</c> are dropped: the server ignores them,
/// and they are most of a report's bytes.
/// </summary>
public sealed record CombinedReport(long Tests, List<(string Suite, string Name, string? Message)> Failures, List<(string File, string Problem)> Unreadable)
{
    private static readonly XmlReaderSettings s_read = new() { DtdProcessing = DtdProcessing.Ignore, XmlResolver = null, IgnoreComments = true };

    public static CombinedReport Write(IReadOnlyList<string> files, Stream destination)
    {
        var unreadable = new List<(string, string)>();
        var outcomes = new Dictionary<(string Suite, string Name), (bool Failed, string? Message)>();
        long tests = 0;
        using (var gzip = new GZipStream(destination, CompressionLevel.Fastest, leaveOpen: true))
        using (var writer = XmlWriter.Create(gzip, new XmlWriterSettings { Encoding = new UTF8Encoding(false), CloseOutput = false }))
        {
            writer.WriteStartElement("testsuites");
            foreach (var file in files)
            {
                if (Problem(file) is { } problem)
                {
                    unreadable.Add((file, problem));
                    continue;
                }

                using var reader = XmlReader.Create(file, s_read);
                reader.MoveToContent();
                if (reader.LocalName == "testsuite")
                {
                    CopySuite(reader, writer, ref tests, outcomes);
                    continue;
                }

                if (!reader.IsEmptyElement)
                {
                    reader.Read();
                    while (!reader.EOF && reader.NodeType != XmlNodeType.EndElement)
                    {
                        if (reader.NodeType == XmlNodeType.Element)
                        {
                            CopySuite(reader, writer, ref tests, outcomes);
                        }
                        else
                        {
                            reader.Read();
                        }
                    }
                }
            }

            writer.WriteEndElement();
        }

        destination.Position = 0;
        var failures = outcomes.Where(static o => o.Value.Failed).Select(static o => (o.Key.Suite, o.Key.Name, o.Value.Message)).ToList();
        return new CombinedReport(tests, failures, unreadable);
    }

    /// <summary>Why a file cannot be sent (not well-formed XML, or not a JUnit report), or null when it can.</summary>
    private static string? Problem(string file)
    {
        try
        {
            using var reader = XmlReader.Create(file, s_read);
            reader.MoveToContent();
            if (reader.LocalName is not ("testsuites" or "testsuite"))
            {
                return $"the root element is <{reader.LocalName}>, not <testsuites> or <testsuite>";
            }

            while (reader.Read())
            {
            }

            return null;
        }
        catch (Exception e) when (e is XmlException or IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }

    /// <summary>Copies one element (a suite) whole, noting each test case's outcome (a later attempt replaces an earlier one).</summary>
    private static void CopySuite(XmlReader reader, XmlWriter writer, ref long tests, Dictionary<(string, string), (bool, string?)> outcomes)
    {
        using var subtree = reader.ReadSubtree();
        (string Suite, string Name)? current = null;
        var caseDepth = -1;
        subtree.Read();
        while (!subtree.EOF)
        {
            switch (subtree.NodeType)
            {
                case XmlNodeType.Element when subtree.LocalName is "system-out" or "system-err" or "properties":
                    subtree.Skip();
                    continue;
                case XmlNodeType.Element:
                    if (subtree.LocalName == "testcase")
                    {
                        tests++;
                        current = (subtree.GetAttribute("classname") ?? "", subtree.GetAttribute("name") ?? "");
                        caseDepth = subtree.Depth;
                        outcomes[current.Value] = (false, null);
                    }
                    else if (subtree.LocalName is "failure" or "error" && current is { } test && subtree.Depth == caseDepth + 1)
                    {
                        outcomes[test] = (true, subtree.GetAttribute("message"));
                    }

                    writer.WriteStartElement(subtree.Prefix, subtree.LocalName, subtree.NamespaceURI);
                    writer.WriteAttributes(subtree, defattr: false);
                    if (subtree.IsEmptyElement)
                    {
                        writer.WriteEndElement();
                    }

                    break;
                case XmlNodeType.EndElement:
                    writer.WriteFullEndElement();
                    break;
                case XmlNodeType.Text:
                case XmlNodeType.SignificantWhitespace:
                    writer.WriteString(subtree.Value);
                    break;
                case XmlNodeType.CDATA:
                    writer.WriteCData(subtree.Value);
                    break;
            }

            subtree.Read();
        }

        reader.Read(); // past the copied element
    }
}

/// <summary>The POST with retries: connection failures, 429 and 5xx, with backoff, jitter and Retry-After, within the deadline.</summary>
public static class UploadClient
{
    public readonly record struct Sent(JsonElement? Answer, string? Problem);

    public static async Task<Sent> SendAsync(Uri url, string token, Stream report, DateTimeOffset deadline, TextWriter errors)
    {
        using var client = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10) }) { Timeout = Timeout.InfiniteTimeSpan };
        var delay = TimeSpan.FromSeconds(1);
        string? problem = null;
        for (var attempt = 1; ; attempt++)
        {
            var left = deadline - DateTimeOffset.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                return new Sent(null, problem ?? "the deadline passed");
            }

            TimeSpan? retryAfter = null;
            try
            {
                report.Position = 0;
                using var content = new StreamContent(new NonClosingStream(report));
                content.Headers.ContentType = new MediaTypeHeaderValue("application/xml");
                content.Headers.ContentEncoding.Add("gzip");
                using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = content };
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                using var timeout = new CancellationTokenSource(left);
                using var response = await client.SendAsync(request, timeout.Token);
                var body = await response.Content.ReadAsStringAsync(timeout.Token);
                if (response.IsSuccessStatusCode)
                {
                    using var json = JsonDocument.Parse(body);
                    return new Sent(json.RootElement.Clone(), null);
                }

                var detail = ProblemDetail(body);
                problem = $"the server answered {(int)response.StatusCode}{(detail is null ? "" : ": " + detail)}";
                if (response.StatusCode is not (HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout) && (int)response.StatusCode < 500)
                {
                    return new Sent(null, problem); // the request itself is wrong: repeating it cannot help
                }

                retryAfter = response.Headers.RetryAfter is { } header
                    ? header.Delta ?? (header.Date is { } date ? date - DateTimeOffset.UtcNow : null)
                    : null;
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException or JsonException)
            {
                problem = e is OperationCanceledException ? "the deadline passed" : $"the server could not be reached ({e.Message})";
            }

            // Retry-After is honoured, but never below half a second (a date in the past, a clock skew, or 0).
            var wait = retryAfter is { } asked ? TimeSpan.FromTicks(Math.Max(asked.Ticks, TimeSpan.FromMilliseconds(500).Ticks))
                : delay + TimeSpan.FromMilliseconds(Random.Shared.Next(0, (int)delay.TotalMilliseconds));
            if (DateTimeOffset.UtcNow + wait >= deadline)
            {
                return new Sent(null, $"{problem}; no time left for another attempt");
            }

            await errors.WriteLineAsync($"fastingest upload: attempt {attempt}: {problem}; retrying in {wait.TotalSeconds:0.#} s");
            await Task.Delay(wait);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
        }
    }

    private static string? ProblemDetail(string body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            return json.RootElement.TryGetProperty("detail", out var detail) ? detail.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Lets every attempt send the same temporary file without closing it (seekable: a Content-Length is sent).</summary>
    private sealed class NonClosingStream(Stream inner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => inner.Position = value; }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(buffer, cancellationToken);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>The Markdown summary GitHub Actions shows on the job's page (when <c>GITHUB_STEP_SUMMARY</c> is set).</summary>
public static class StepSummary
{
    public static async Task AppendAsync(Func<string, string?> env, CombinedReport report, string runId, long blocking, long quarantined, string runUrl,
        string server, string token, string? projectId)
    {
        if (env("GITHUB_STEP_SUMMARY") is not { Length: > 0 } path)
        {
            return;
        }

        var quarantinedTests = await QuarantinedAsync(server, token, projectId);
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"### FastIngest: run `{runId}`");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"{report.Tests} tests, {report.Failures.Count} failed: **{blocking} blocking**, {quarantined} quarantined. [Open the run]({runUrl})");
        text.AppendLine();
        foreach (var (suite, name, message) in report.Failures.OrderBy(f => quarantinedTests.Contains((f.Suite, f.Name))))
        {
            var tag = quarantinedTests.Contains((suite, name)) ? "quarantined" : "**blocking**";
            text.AppendLine(CultureInfo.InvariantCulture, $"- {tag}: `{Code(suite)}` / `{Code(name)}`{(message is null ? "" : $": {Code(message.Split('\n')[0])}")}");
        }

        await File.AppendAllTextAsync(path, text.ToString());
    }

    private static async Task<HashSet<(string, string)>> QuarantinedAsync(string server, string token, string? projectId)
    {
        var set = new HashSet<(string, string)>();
        if (projectId is null)
        {
            return set;
        }

        try
        {
            using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            using var request = new HttpRequestMessage(HttpMethod.Get, $"{server.TrimEnd('/')}/v1/projects/{Uri.EscapeDataString(projectId)}/quarantine");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await client.SendAsync(request);
            if (response.IsSuccessStatusCode)
            {
                using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                foreach (var test in json.RootElement.GetProperty("tests").EnumerateArray())
                {
                    set.Add((test.GetProperty("suite").GetString() ?? "", test.GetProperty("name").GetString() ?? ""));
                }
            }
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException)
        {
            // The summary is a courtesy: without the list, failures are shown without their quarantine marks.
        }

        return set;
    }

    private static string Code(string text) => text.Replace('`', '\'').Replace('\n', ' ').Replace('\r', ' ');
}
