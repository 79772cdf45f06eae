using System.Diagnostics;
using System.Buffers;
using FastIngest.Auth;
using FastIngest.Configuration;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Observability;
using FastIngest.Storage;
using FastIngest.TestCases;
using Microsoft.AspNetCore.Http.Features;
using Prometheus;

namespace FastIngest.Ingest;

/// <summary>
/// <c>POST /v1/ingest</c>, the hot path, top to bottom: authenticate (a cache hit) -> check content type ->
/// read the body (bounded) -> parse by hand -> publish to the writer -> await the durable commit -> answer.
/// Authentication comes first so an anonymous caller never gets its body buffered or validated.
/// A JUnit XML body takes the streamed path through <see cref="JUnitUpload"/> and then the same writer.
/// </summary>
public sealed class IngestEndpoint
{
    /// <summary>JSON bodies up to this size with a Content-Length (every run without test cases) need no upload slot.</summary>
    public const int SmallBodyBytes = 64 * 1024;

    private readonly RequestAuthentication _auth;
    private readonly RunBatchWriter _queue;
    private readonly JUnitUpload _junit;
    private readonly UploadSlots _uploads;
    private readonly UploadSpool _spool;
    private readonly TestCaseLimits _testLimits;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly int _maxBody;
    private readonly ServerOptions _options;
    private readonly Counter.Child _created, _duplicate, _conflict, _overloaded, _uploadsBusy, _spoolFull, _failed;
    private readonly Counter _testCasesStored;
    private readonly Counter.Child _rejectedInvalid, _rejectedTooLarge, _rejectedMediaType, _rejectedScope, _rejectedRetired,
        _rejectedProjectGone, _failedAlone, _rejectedQuota;
    private readonly DailyQuota _quota;
    private readonly Quarantine.QuarantineSet _quarantine;
    private readonly Prometheus.Histogram.Child _authStage;
    private readonly Prometheus.Histogram.Child _parseStage;

    public IngestEndpoint(RequestAuthentication auth, RunBatchWriter queue, JUnitUpload junit, UploadSlots uploads, UploadSpool spool,
        TimeProvider clock, ServerOptions options, ServerMetrics metrics, ILoggerFactory loggers, DailyQuota quota,
        Quarantine.QuarantineSet quarantine)
    {
        _quarantine = quarantine;
        _spool = spool;
        _quota = quota;
        _uploads = uploads;
        _auth = auth;
        _queue = queue;
        _junit = junit;
        _testLimits = options.TestCases;
        _clock = clock;
        _maxBody = options.MaxIngestBodyBytes;
        _options = options;
        _logger = loggers.CreateLogger("FastIngest.Ingest");
        var outcomes = metrics.IngestOutcomes;
        _created = outcomes.WithLabels("created", "");
        _duplicate = outcomes.WithLabels("duplicate", "");
        _conflict = outcomes.WithLabels("conflict", "");
        _overloaded = outcomes.WithLabels("overloaded", "queue_full");
        _uploadsBusy = outcomes.WithLabels("overloaded", "upload_slots");
        _spoolFull = outcomes.WithLabels("overloaded", "upload_spool");
        _testCasesStored = metrics.TestCasesStored;
        _failed = outcomes.WithLabels("failed", "commit_failed");
        _rejectedInvalid = outcomes.WithLabels("rejected", "invalid_body");
        _rejectedTooLarge = outcomes.WithLabels("rejected", "too_large");
        _rejectedMediaType = outcomes.WithLabels("rejected", "media_type");
        _rejectedScope = outcomes.WithLabels("rejected", "scope");
        _rejectedRetired = outcomes.WithLabels("rejected", "token_retired");
        _rejectedProjectGone = outcomes.WithLabels("rejected", "project_gone");
        _failedAlone = outcomes.WithLabels("failed", "run_constraint");
        _rejectedQuota = outcomes.WithLabels("rejected", "daily_quota");
        _authStage = metrics.IngestStageDuration.WithLabels("auth");
        _parseStage = metrics.IngestStageDuration.WithLabels("parse");
    }

    /// <remarks>
    /// The request's one real wait is for the writer (<see cref="StoreAsync"/>); the steps before it return their
    /// tasks instead of awaiting them, so a small JSON run allocates one async state machine, not three (an allocation
    /// profile of the ingest load counted about 200 bytes for each layer, #21).
    /// </remarks>
    public Task HandleAsync(HttpContext context)
    {
        // WARNING: hot path. On a cache hit authentication is a hash and a dictionary read; never add a
        // database read, an Argon2 call or an Info-level log line here.
        var started = Stopwatch.GetTimestamp();
        var authentication = _auth.AuthenticateAsync(context, RateLimitPolicy.Ingest);
        return authentication.IsCompletedSuccessfully
            ? AuthenticatedAsync(context, authentication.Result, started)
            : AwaitAuthenticationAsync(context, authentication, started);
    }

    private async Task AwaitAuthenticationAsync(HttpContext context, ValueTask<Principal?> authentication, long started) =>
        await AuthenticatedAsync(context, await authentication, started);

    /// <summary>The checks every upload passes once authenticated, then the small-JSON path or the spooled one.</summary>
    private Task AuthenticatedAsync(HttpContext context, Principal? principal, long started)
    {
        if (principal is null)
        {
            return Task.CompletedTask; // refused, its response written; its time is the refusal's, not authentication's
        }

        _authStage.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);

        if (principal.Scope != TokenScope.Ingest)
        {
            _rejectedScope.Inc();
            return Problems.Forbidden(context, "Ingest needs a project token with scope 'ingest'.");
        }

        var junit = JUnitUpload.IsJUnit(context.Request);
        if (!junit && !context.Request.HasJsonContentType())
        {
            _rejectedMediaType.Inc();
            return Problems.UnsupportedMediaType(context);
        }

        if (!junit && RefuseJsonExtras(context) is { } refusal)
        {
            return refusal;
        }

        return !junit && context.Request.ContentLength <= SmallBodyBytes
            ? HandleJsonAsync(context, principal)
            : HandleLargeAsync(context, principal, junit);
    }

    /// <summary>
    /// A JUnit upload or a large JSON body: received in full into the spool (watched for a minimum rate and a
    /// deadline, holding no slot), then parsed and committed under one of the org's upload slots, which is handed
    /// on before the answer is written, so neither a slow sender nor a slow reader holds anything others need.
    /// </summary>
    private async Task HandleLargeAsync(HttpContext context, Principal principal, bool junit)
    {
        JUnitUpload.JUnitRequest? report = null;
        if (junit && (report = await _junit.ReadRequestAsync(context)) is null)
        {
            return;
        }

        // An org's uploads share its spool places and slots; a project token always has its org.
        var tenantKey = principal.OrgKey ?? principal.ProjectKey!.Value;
        using var reservation = _spool.TryReserve(tenantKey);
        if (reservation is null)
        {
            _uploadsBusy.Inc();
            await Problems.Unavailable(context, "uploads-busy",
                $"This tenant already has {_options.UploadsReceivingPerOrg} uploads arriving; retry shortly.", 5);
            return;
        }

        if (!junit && context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            // Our own limit answers first with a problem body; Kestrel's (for the other routes) must not cut in.
            bodyLimit.MaxRequestBodySize = _maxBody + 1L;
        }

        UploadSpool.Received received;
        using (UploadBodyWatch.Start(context, _options, _clock, streamed: true))
        {
            received = await _spool.ReceiveAsync(context, reservation, junit ? _junit.MaxUploadBytes : _maxBody);
        }

        await using var body = received.Body;
        if (body is null)
        {
            await RefuseUnreceivedAsync(context, received, junit);
            return;
        }

        using var lease = await _uploads.TryEnterAsync(tenantKey, context.RequestAborted);
        if (lease is null)
        {
            if (!context.RequestAborted.IsCancellationRequested)
            {
                _uploadsBusy.Inc();
                await Problems.Unavailable(context, "uploads-busy", "Every upload slot this tenant may use is busy; retry shortly.", 5);
            }

            return;
        }

        RunRecord? run;
        if (junit)
        {
            var started = Stopwatch.GetTimestamp();
            run = await _junit.ParseAsync(context, report!, body, principal.ProjectKey!.Value);
            if (run is not null)
            {
                _parseStage.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds); // refusals (400 written) are not parse time
            }
        }
        else
        {
            run = await ParseSpooledJsonAsync(context, principal, body); // timed in ParseJsonAsync
        }

        if (run is not null)
        {
            await StoreAsync(context, principal, run, body.Length, lease);
        }
    }

    private async Task<RunRecord?> ParseSpooledJsonAsync(HttpContext context, Principal principal, SpooledBody body)
    {
        var length = (int)body.Length; // at most _maxBody
        var bytes = ArrayPool<byte>.Shared.Rent(Math.Max(1, length));
        try
        {
            // A local file or memory: nothing to wait for, and a client leaving now changes nothing.
            await body.Content.ReadExactlyAsync(bytes.AsMemory(0, length), CancellationToken.None);
            return await ParseJsonAsync(context, principal, new ReadOnlySequence<byte>(bytes, 0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    private Task RefuseUnreceivedAsync(HttpContext context, UploadSpool.Received received, bool junit)
    {
        switch (received.Failure)
        {
            case UploadSpool.ReceiveFailure.TooLarge:
                return junit ? _junit.RefuseTooLargeAsync(context) : RefuseTooLargeAsync(context);
            case UploadSpool.ReceiveFailure.SpoolFull:
                _spoolFull.Inc();
                return Problems.Unavailable(context, "uploads-busy",
                    "The server cannot hold this upload right now (this tenant's or the server's upload space is in use, or its disk is nearly full); retry shortly.", 30);
            default:
                if (received.Malformed is { } reason)
                {
                    _rejectedInvalid.Inc();
                    return Problems.MalformedBody(context, reason);
                }

                return Task.CompletedTask; // the client went away: nobody to answer
        }
    }

    private Task RefuseTooLargeAsync(HttpContext context)
    {
        _rejectedTooLarge.Inc();
        return Problems.TooLarge(context, _maxBody);
    }

    /// <summary>
    /// A JSON run carries all its fields in the body, uncompressed: a query parameter (say, another project's
    /// <c>project_id</c>) or a <c>Content-Encoding</c> would otherwise be ignored in silence and answered 201.
    /// </summary>
    /// <returns>The refusal being written, or null when the request carries neither.</returns>
    private Task? RefuseJsonExtras(HttpContext context)
    {
        var encoding = context.Request.Headers.ContentEncoding;
        if (encoding.Count > 0 && !(encoding.Count == 1 && string.Equals(encoding[0], "identity", StringComparison.OrdinalIgnoreCase)))
        {
            _rejectedMediaType.Inc();
            return Problems.WriteAsync(context, StatusCodes.Status415UnsupportedMediaType, "unsupported-encoding", "Unsupported content encoding.",
                $"JSON runs are sent uncompressed, not as '{encoding}' (JUnit XML may be gzip).");
        }

        // The raw query string first: parsing it (Request.Query) allocates, and almost every upload has none.
        if (!context.Request.QueryString.HasValue || context.Request.Query.Count == 0)
        {
            return null;
        }

        _rejectedInvalid.Inc();
        return Problems.Validation(context, context.Request.Query.Keys
            .Select(static key => new FieldError(key, "is not a known query parameter; a JSON run carries its fields in the body"))
            .ToList());
    }

    private Task HandleJsonAsync(HttpContext context, Principal principal)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            // Our own limit answers first with a problem body; Kestrel's (for the other routes) must not cut in.
            bodyLimit.MaxRequestBodySize = _maxBody + 1L;
        }

        var reading = RequestBody.ReadAsync(context, _maxBody);
        return reading.IsCompletedSuccessfully ? ReadJsonAsync(context, principal, reading.Result) : AwaitJsonAsync(context, principal, reading);
    }

    private async Task AwaitJsonAsync(HttpContext context, Principal principal, ValueTask<RequestBody.Result> reading) =>
        await ReadJsonAsync(context, principal, await reading);

    private Task ReadJsonAsync(HttpContext context, Principal principal, RequestBody.Result read)
    {
        if (read.TooLarge)
        {
            return RefuseTooLargeAsync(context);
        }

        if (read.Aborted)
        {
            return read.Malformed is { } reason ? Problems.MalformedBody(context, reason) : Task.CompletedTask;
        }

        var bodyBytes = read.Body.Length;
        ValueTask<RunRecord?> parsing;
        try
        {
            // The parse itself runs before ParseJsonAsync returns (only a refusal's answer is awaited), so the body
            // can go back to its pool here.
            parsing = ParseJsonAsync(context, principal, read.Body);
        }
        finally
        {
            RequestBody.Release(context, read.Body);
        }

        if (!parsing.IsCompletedSuccessfully)
        {
            return parsing.AsTask(); // a validation problem being written: nothing to store
        }

        return parsing.Result is { } run ? StoreAsync(context, principal, run, bodyBytes, lease: null) : Task.CompletedTask;
    }

    /// <summary>The run a JSON body describes, or null once the validation problem is written.</summary>
    private async ValueTask<RunRecord?> ParseJsonAsync(HttpContext context, Principal principal, ReadOnlySequence<byte> body)
    {
        var started = Stopwatch.GetTimestamp();
        var parsed = IngestBodyParser.TryParse(body, principal.ProjectKey!.Value, _clock.GetUtcNow().ToUnixTimeMilliseconds(), out var run, out var errors, _testLimits);
        if (parsed)
        {
            _parseStage.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
            return run;
        }

        _rejectedInvalid.Inc();
        await Problems.Validation(context, errors!);
        return null;
    }

    private async Task StoreAsync(HttpContext context, Principal principal, RunRecord run, long bodyBytes, FairSlots.Lease? lease)
    {
        if (principal.IsRetired)
        {
            // Revoked, or its project deleted, while this body was arriving: nothing is stored for it.
            _rejectedRetired.Inc();
            await Problems.Unauthorized(context, AuthFailure.Revoked);
            return;
        }

        // Over the org's daily quota a run is only looked up: a retry of a stored run is still a duplicate.
        var orgKey = principal.OrgKey ?? principal.ProjectKey!.Value;
        var rows = 1L + (run.Tests?.Count ?? 0);
        var resetSeconds = _quota.TryReserve(orgKey, rows, bodyBytes);
        if (resetSeconds is not null)
        {
            run = run with { LookupOnly = true };
            rows = 0;
            bodyBytes = 0;
        }

        if (!_queue.TryPublish(run, out var completion))
        {
            _quota.Release(orgKey, rows, bodyBytes);
            _overloaded.Inc();
            await Problems.Unavailable(context, "overloaded", "The ingest queue is full; retry after a moment.");
            return;
        }

        var result = await completion;
        lease?.Dispose(); // committed (or not): the run's memory is no longer ours to bound
        if (!result.Committed || result.Outcome != RunWriteOutcome.Created)
        {
            _quota.Release(orgKey, rows, bodyBytes); // only newly stored runs count
        }

        if (!result.Committed)
        {
            _failed.Inc();
            await Problems.Unavailable(context, "not-stored", "The run could not be stored and was not acknowledged; retry.", 2);
            return;
        }

        switch (result.Outcome)
        {
            case RunWriteOutcome.Created:
                _created.Inc();
                _testCasesStored.Inc(run.Tests?.Count ?? 0);
                await WriteAcceptedAsync(context, StatusCodes.Status201Created, run, principal.ProjectId!, duplicate: false, await CountBlockingAsync(run));
                break;
            case RunWriteOutcome.Duplicate:
                _duplicate.Inc();
                await WriteAcceptedAsync(context, StatusCodes.Status200OK, run, principal.ProjectId!, duplicate: true, await CountBlockingAsync(run));
                break;
            case RunWriteOutcome.Conflict or RunWriteOutcome.ShardMismatch or RunWriteOutcome.TooManyShards:
                _conflict.Inc();
                Log.RunConflict(_logger, context.TraceIdentifier, principal.ProjectId!, run.RunId);
                await Problems.Conflict(context, "run-conflict", ConflictDetail(result.Outcome, run));
                break;
            case RunWriteOutcome.OverQuota:
                _rejectedQuota.Inc();
                await Problems.TooManyRequests(context,
                    "This organization has stored its daily quota of rows or bytes; it resets at 00:00 UTC.", resetSeconds ?? 1);
                break;
            case RunWriteOutcome.ProjectGone:
                // Deleted while the run was on its way: a retry can never succeed, so no 503.
                _rejectedProjectGone.Inc();
                await Problems.NotFound(context, $"Project '{principal.ProjectId}'");
                break;
            default:
                _failedAlone.Inc();
                Log.RunFailedAlone(_logger, context.TraceIdentifier, principal.ProjectId!, run.RunId);
                await Problems.WriteAsync(context, StatusCodes.Status500InternalServerError, "run-not-stored", "The run could not be stored.",
                    "This run broke a storage constraint and was not stored; the other runs were. The server log has the request id.");
                break;
        }
    }

    /// <summary>Why a run (or one shard of it) was not stored although its id is: the 409's detail.</summary>
    private static string ConflictDetail(RunWriteOutcome outcome, RunRecord run) => (outcome, run.Shard) switch
    {
        (RunWriteOutcome.Conflict, null) => $"Run '{run.RunId}' is already stored with different content; the stored run was not changed.",
        (RunWriteOutcome.Conflict, var shard) =>
            $"Shard '{shard}' of run '{run.RunId}' is already stored with different content; the stored run was not changed.",
        (RunWriteOutcome.ShardMismatch, null) =>
            $"Run '{run.RunId}' is stored in shards; an upload without a shard cannot join it. Name this upload's shard, or use a new run id.",
        (RunWriteOutcome.ShardMismatch, var shard) =>
            $"Run '{run.RunId}' cannot take shard '{shard}': it is stored without shards, or its shards name another branch or commit. Every shard of a run must name the same branch and commit.",
        (_, var shard) => $"Run '{run.RunId}' has {IngestFields.MaxShardsPerRun} shards, the most a run may have; shard '{shard}' was not stored.",
    };

    /// <summary>
    /// The run's failed tests (by their last attempt) and how many of them are quarantined: the uploader decides
    /// whether the build fails from this answer alone. Runs without failing tests (the hot path) cost nothing here.
    /// </summary>
    private ValueTask<(long Failed, long Quarantined)> CountBlockingAsync(RunRecord run) =>
        run.Tests is not { Count: > 0 } tests || run.Counts is not { Failed: > 0 }
            ? ValueTask.FromResult<(long, long)>((0, 0))
            : CountBlockingAsync(run.ProjectKey, tests);

    private async ValueTask<(long Failed, long Quarantined)> CountBlockingAsync(long projectKey, IReadOnlyList<TestCase> tests)
    {

        var finals = new Dictionary<(string Suite, string Name), TestCase>();
        foreach (var test in tests)
        {
            if (!finals.TryGetValue((test.Suite, test.Name), out var seen) || test.Attempt > seen.Attempt)
            {
                finals[(test.Suite, test.Name)] = test;
            }
        }

        var quarantine = await _quarantine.ForProjectAsync(projectKey);
        long failed = 0, quarantined = 0;
        foreach (var ((suite, name), test) in finals)
        {
            if (test.Status.IsFailure())
            {
                failed++;
                quarantined += quarantine.Contains(suite, name) ? 1 : 0;
            }
        }

        return (failed, quarantined);
    }

    private static Task WriteAcceptedAsync(HttpContext context, int status, RunRecord run, string projectId, bool duplicate,
        (long Failed, long Quarantined) failures) =>
        JsonResponse.WriteAsync(context, status, (run, projectId, duplicate, failures), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("run_id"u8, s.run.RunId);
            if (s.run.Shard is { } shard)
            {
                json.WriteString("shard"u8, shard);
            }

            json.WriteString("project_id"u8, s.projectId);
            json.WriteBoolean("duplicate"u8, s.duplicate);
            if (s.run.Tests is { } tests)
            {
                // A JUnit upload's caller learns what the server made of the file.
                json.WriteString("status"u8, s.run.Passed ? "passed" : "failed");
                json.WriteNumber("test_cases"u8, tests.Count);
                json.WriteCounts(s.run.Counts);
                json.WriteNumber("failed_tests"u8, s.failures.Failed);
                json.WriteNumber("quarantined_failures"u8, s.failures.Quarantined);
                json.WriteNumber("blocking_failures"u8, s.failures.Failed - s.failures.Quarantined);
            }

            json.WriteEndObject();
        });
}
