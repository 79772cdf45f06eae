using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Xml;
using FastIngest.Configuration;
using FastIngest.Http;
using FastIngest.Ingest;
using FastIngest.Observability;
using FastIngest.Storage;
using Microsoft.AspNetCore.Http.Features;
using Prometheus;

namespace FastIngest.TestCases;

/// <summary>
/// <c>POST /v1/ingest</c> with a JUnit XML body (<c>application/xml</c> or <c>text/xml</c>, optionally
/// <c>Content-Encoding: gzip</c>). The run's fields come from query parameters or <c>X-Run-*</c> headers; what
/// is missing follows from the file: status from the test cases, duration from the root's <c>time</c> (else the
/// sum of the cases), timestamp from the first suite's <c>timestamp</c> (else the time of receipt, which then
/// does not take part in the retry fingerprint).
/// <para>
/// The body is received first (<see cref="Ingest.UploadSpool"/>), then parsed as a stream under an upload slot:
/// memory is bounded per upload by <see cref="TestCaseLimits"/> and across uploads by
/// <see cref="Ingest.UploadSlots"/>; the CPU a report may cost by <see cref="InflationLimit"/>.
/// </para>
/// </summary>
public sealed class JUnitUpload
{
    private static readonly (string Query, string Header)[] s_fields =
    [
        ("run_id", "X-Run-Id"),
        ("status", "X-Run-Status"),
        ("duration_ms", "X-Run-Duration-Ms"),
        ("timestamp", "X-Run-Timestamp"),
        ("branch", "X-Run-Branch"),
        ("commit_sha", "X-Run-Commit-Sha"),
        ("build_url", "X-Run-Build-Url"),
        ("shard", "X-Run-Shard"),
    ];

    /// <summary>Longest start tag accepted: room for a long failure message attribute, not for millions of attributes.</summary>
    private const int MaxTagBytes = 1024 * 1024;

    private readonly TestCaseLimits _limits;
    private readonly long _maxUploadBytes;
    private readonly long _maxXmlBytes;
    private readonly TimeProvider _clock;
    private readonly Counter.Child _rejectedInvalid, _rejectedTooLarge, _rejectedEncoding;

    public JUnitUpload(ServerOptions options, TimeProvider clock, ServerMetrics metrics)
    {
        _limits = options.TestCases;
        _maxUploadBytes = options.MaxJUnitUploadBytes;
        _maxXmlBytes = options.MaxJUnitXmlBytes;
        _clock = clock;
        _rejectedInvalid = metrics.IngestOutcomes.WithLabels("rejected", "invalid_junit");
        _rejectedTooLarge = metrics.IngestOutcomes.WithLabels("rejected", "junit_too_large");
        _rejectedEncoding = metrics.IngestOutcomes.WithLabels("rejected", "content_encoding");
    }

    public static bool IsJUnit(HttpRequest request)
    {
        var contentType = request.ContentType;
        if (contentType is null)
        {
            return false;
        }

        var mediaType = contentType.AsSpan();
        var semicolon = mediaType.IndexOf(';');
        mediaType = (semicolon >= 0 ? mediaType[..semicolon] : mediaType).Trim();
        return mediaType.Equals("application/xml", StringComparison.OrdinalIgnoreCase)
            || mediaType.Equals("text/xml", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// Checks what arrives before the body (the run's fields, the encoding, a declared length) so a bad request is
    /// refused before its body is received; null once the error response is written.
    /// </summary>
    public async Task<JUnitRequest?> ReadRequestAsync(HttpContext context)
    {
        var fields = ReadFields(context.Request, out var errors);
        if (errors.Count > 0)
        {
            _rejectedInvalid.Inc();
            await Problems.Validation(context, errors);
            return null;
        }

        var encoding = context.Request.Headers.ContentEncoding.ToString();
        var gzip = encoding.Equals("gzip", StringComparison.OrdinalIgnoreCase) || encoding.Equals("x-gzip", StringComparison.OrdinalIgnoreCase);
        if (!gzip && encoding.Length > 0 && !encoding.Equals("identity", StringComparison.OrdinalIgnoreCase))
        {
            _rejectedEncoding.Inc();
            await Problems.WriteAsync(context, StatusCodes.Status415UnsupportedMediaType, "unsupported-content-encoding",
                "Unsupported content encoding.", $"Content-Encoding '{encoding}' is not supported; send the report as is or gzip-compressed.");
            return null;
        }

        if (context.Request.ContentLength > _maxUploadBytes)
        {
            await RefuseTooLargeAsync(context);
            return null;
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = _maxUploadBytes;
        }

        return new JUnitRequest(fields, gzip);
    }

    /// <summary>Largest request body, as sent.</summary>
    public long MaxUploadBytes => _maxUploadBytes;

    public Task RefuseTooLargeAsync(HttpContext context)
    {
        _rejectedTooLarge.Inc();
        return Problems.TooLarge(context, _maxUploadBytes);
    }

    /// <summary>
    /// The most a gzip body of <paramref name="compressedBytes"/> may inflate to: anything up to 64 MiB, beyond
    /// that 128 times its size, never over <paramref name="maxXmlBytes"/> (<see cref="ServerOptions.MaxJUnitXmlBytes"/>). Parsing costs CPU in
    /// proportion to the bytes parsed (about 35 MB/s here), so this is the upload's CPU budget: real reports
    /// compress 19-112x (100k cases: 10.5 MB to 0.56 MB; 10k identical stack traces: 112x), a gzip bomb about
    /// 1000x; a 530 KB bomb that used to cost 15 s of parsing before its 413 now stops at 68 MB.
    /// </summary>
    public static long InflationLimit(long compressedBytes, long maxXmlBytes) =>
        Math.Min(maxXmlBytes, Math.Max(MinInflationAllowance, compressedBytes * MaxInflationRatio));

    private const long MinInflationAllowance = 64L * 1024 * 1024;
    private const long MaxInflationRatio = 128;

    /// <summary>The run a received report describes, or null once the error response is written.</summary>
    public async Task<RunRecord?> ParseAsync(HttpContext context, JUnitRequest request, SpooledBody body, long projectKey)
    {
        JUnitDocument document;
        try
        {
            document = await ReadDocumentAsync(body, request.Gzip);
        }
        catch (Exception e) when (e is XmlException or JUnitFormatException or InvalidDataException)
        {
            _rejectedInvalid.Inc();
            var problem = e switch
            {
                XmlException => $"malformed XML: {e.Message}",
                InvalidDataException => "the body is not valid gzip data",
                _ => e.Message,
            };
            await Problems.Validation(context, [new FieldError("body", problem)]);
            return null;
        }
        catch (UploadTooLargeException e)
        {
            _rejectedTooLarge.Inc();
            await Problems.WriteAsync(context, StatusCodes.Status413PayloadTooLarge, "body-too-large",
                "The request body is too large.", e.Message + ".");
            return null;
        }

        return ToRun(request.Fields, document, projectKey);
    }

    private async Task<JUnitDocument> ReadDocumentAsync(SpooledBody body, bool gzip)
    {
        var compressed = gzip ? new GZipStream(body.Content, CompressionMode.Decompress, leaveOpen: true) : null;
        try
        {
            var xml = new XmlGuardStream(gzip
                ? new BoundedReadStream(compressed!, InflationLimit(body.Length, _maxXmlBytes), "the decompressed report")
                : body.Content, MaxTagBytes);
            return await JUnitXmlReader.ReadAsync(xml, _limits);
        }
        finally
        {
            if (compressed is not null)
            {
                await compressed.DisposeAsync();
            }
        }
    }

    private RunRecord ToRun(RunFields fields, JUnitDocument document, long projectKey)
    {
        var tests = document.Tests;
        var passed = fields.Passed ?? !tests.AnyFailed;
        var duration = fields.DurationMs ?? document.DurationMs ?? tests.TotalDurationMs;
        var received = _clock.GetUtcNow();
        var timestamp = fields.Timestamp ?? document.Timestamp;
        return new RunRecord
        {
            ProjectKey = projectKey,
            RunId = fields.RunId!,
            Shard = fields.Shard,
            Passed = passed,
            DurationMs = duration,
            TimestampMs = (timestamp ?? received).ToUnixTimeMilliseconds(),
            Branch = fields.Branch,
            BuildUrl = fields.BuildUrl,
            CommitSha = fields.CommitSha,
            Counts = tests.Counts,
            Tests = tests.Cases,
            Fingerprint = RunFingerprint.Compute(passed, duration, timestamp?.UtcTicks ?? long.MinValue, fields.Branch,
                fields.CommitSha, tests.Counts, tests.Fingerprint),
            ReceivedAtMs = received.ToUnixTimeMilliseconds(),
        };
    }

    private static RunFields ReadFields(HttpRequest request, out List<FieldError> errors)
    {
        errors = [];
        foreach (var key in request.Query.Keys)
        {
            if (Array.FindIndex(s_fields, f => f.Query == key) < 0)
            {
                errors.Add(new FieldError(key, "is not a known query parameter; a JUnit upload takes run_id, shard, status, duration_ms, timestamp, branch, commit_sha and build_url"));
            }
        }

        var values = new string?[s_fields.Length];
        var reported = errors.Count;
        for (var i = 0; i < s_fields.Length; i++)
        {
            var (name, header) = s_fields[i];
            var query = request.Query[name];
            var fromHeader = request.Headers[header];
            if (query.Count > 1 || fromHeader.Count > 1)
            {
                errors.Add(new FieldError(name, "appears more than once"));
                continue;
            }

            if (query.Count == 1 && fromHeader.Count == 1 && query[0] != fromHeader[0])
            {
                errors.Add(new FieldError(name, $"differs between the query string and the {header} header"));
                continue;
            }

            values[i] = query.Count == 1 ? query[0] : fromHeader.Count == 1 ? fromHeader[0] : null;
        }

        var fields = new RunFields();
        var runIdReported = errors.Skip(reported).Any(static e => e.Field == "run_id");
        if (values[0] is not { } runId)
        {
            if (!runIdReported)
            {
                errors.Add(new FieldError("run_id", "is required (query parameter run_id or header X-Run-Id)"));
            }
        }
        else if (RunFieldRules.RunIdError(runId) is { } problem)
        {
            errors.Add(new FieldError("run_id", problem));
        }
        else
        {
            fields.RunId = runId;
        }

        switch (values[1])
        {
            case null: break;
            case "passed": fields.Passed = true; break;
            case "failed": fields.Passed = false; break;
            default: errors.Add(new FieldError("status", "must be \"passed\" or \"failed\"")); break;
        }

        if (values[2] is { } durationText)
        {
            if (long.TryParse(durationText, NumberStyles.None, CultureInfo.InvariantCulture, out var duration) && duration <= IngestFields.MaxDurationMs)
            {
                fields.DurationMs = duration;
            }
            else
            {
                errors.Add(new FieldError("duration_ms", $"must be an integer from 0 to {IngestFields.MaxDurationMs}"));
            }
        }

        if (values[3] is { } timestampText)
        {
            if (timestampText.Length <= 40 && Rfc3339.TryParse(Encoding.UTF8.GetBytes(timestampText), out var timestamp))
            {
                fields.Timestamp = timestamp;
            }
            else
            {
                errors.Add(new FieldError("timestamp", "must be an RFC 3339 date-time with an offset, e.g. 2026-01-12T10:00:00Z"));
            }
        }

        if (values[4] is { } branch)
        {
            if (RunFieldRules.BranchError(branch) is { } problem)
            {
                errors.Add(new FieldError("branch", problem));
            }
            else
            {
                fields.Branch = branch;
            }
        }

        if (values[6] is { } url)
        {
            if (RunFieldRules.BuildUrlError(url) is { } problem)
            {
                errors.Add(new FieldError("build_url", problem));
            }
            else
            {
                fields.BuildUrl = url;
            }
        }

        if (values[7] is { } shard)
        {
            if (RunFieldRules.RunIdError(shard) is { } problem)
            {
                errors.Add(new FieldError("shard", problem));
            }
            else
            {
                fields.Shard = shard;
            }
        }

        if (values[5] is { } sha)
        {
            fields.CommitSha = RunFieldRules.NormalizeCommitSha(sha);
            if (fields.CommitSha is null)
            {
                errors.Add(new FieldError("commit_sha", RunFieldRules.CommitShaShape));
            }
        }

        return fields;
    }

    /// <summary>What the request said before its body: the run's fields and whether the body is gzip.</summary>
    public sealed record JUnitRequest(RunFields Fields, bool Gzip);

    public sealed class RunFields
    {
        public string? RunId { get; set; }

        public bool? Passed { get; set; }

        public long? DurationMs { get; set; }

        public DateTimeOffset? Timestamp { get; set; }

        public string? Branch { get; set; }

        public string? CommitSha { get; set; }

        public string? BuildUrl { get; set; }

        public string? Shard { get; set; }
    }
}
