using FastIngest.Auth;
using FastIngest.Configuration;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Observability;
using FastIngest.Storage;
using Prometheus;

namespace FastIngest.Ingest;

/// <summary>
/// <c>POST /v1/ingest</c>, the hot path, top to bottom: authenticate (a cache hit) -> check content type ->
/// read the body (bounded) -> parse by hand -> publish to the writer -> await the durable commit -> answer.
/// Authentication comes first so an anonymous caller never gets its body buffered or validated.
/// </summary>
public sealed class IngestEndpoint
{
    private readonly RequestAuthentication _auth;
    private readonly RunBatchWriter _queue;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly int _maxBody;
    private readonly Counter.Child _created, _duplicate, _conflict, _overloaded, _failed;
    private readonly Counter.Child _rejectedInvalid, _rejectedTooLarge, _rejectedMediaType, _rejectedScope;

    public IngestEndpoint(RequestAuthentication auth, RunBatchWriter queue, TimeProvider clock, ServerOptions options,
        ServerMetrics metrics, ILoggerFactory loggers)
    {
        _auth = auth;
        _queue = queue;
        _clock = clock;
        _maxBody = options.MaxIngestBodyBytes;
        _logger = loggers.CreateLogger("FastIngest.Ingest");
        var outcomes = metrics.IngestOutcomes;
        _created = outcomes.WithLabels("created", "");
        _duplicate = outcomes.WithLabels("duplicate", "");
        _conflict = outcomes.WithLabels("conflict", "");
        _overloaded = outcomes.WithLabels("overloaded", "queue_full");
        _failed = outcomes.WithLabels("failed", "commit_failed");
        _rejectedInvalid = outcomes.WithLabels("rejected", "invalid_body");
        _rejectedTooLarge = outcomes.WithLabels("rejected", "too_large");
        _rejectedMediaType = outcomes.WithLabels("rejected", "media_type");
        _rejectedScope = outcomes.WithLabels("rejected", "scope");
    }

    public async Task HandleAsync(HttpContext context)
    {
        // WARNING: hot path. On a cache hit authentication is a hash and a dictionary read; never add a
        // database read, an Argon2 call or an Info-level log line here.
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Ingest) is not { } principal)
        {
            return;
        }

        if (principal.Scope != TokenScope.Ingest)
        {
            _rejectedScope.Inc();
            await Problems.Forbidden(context, "Ingest needs a project token with scope 'ingest'.");
            return;
        }

        if (!context.Request.HasJsonContentType())
        {
            _rejectedMediaType.Inc();
            await Problems.UnsupportedMediaType(context);
            return;
        }

        var read = await RequestBody.ReadAsync(context, _maxBody);
        if (read.TooLarge)
        {
            _rejectedTooLarge.Inc();
            await Problems.TooLarge(context, _maxBody);
            return;
        }

        if (read.Aborted)
        {
            return;
        }

        RunRecord? run;
        List<FieldError>? errors;
        try
        {
            IngestBodyParser.TryParse(read.Body, principal.ProjectKey!.Value, _clock.GetUtcNow().ToUnixTimeMilliseconds(), out run, out errors);
        }
        finally
        {
            RequestBody.Release(context, read.Body);
        }

        if (run is null)
        {
            _rejectedInvalid.Inc();
            await Problems.Validation(context, errors!);
            return;
        }

        if (!_queue.TryPublish(run, out var completion))
        {
            _overloaded.Inc();
            await Problems.Unavailable(context, "overloaded", "The ingest queue is full; retry after a moment.");
            return;
        }

        var result = await completion;
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
                await WriteAcceptedAsync(context, StatusCodes.Status201Created, run.RunId, principal.ProjectId!, duplicate: false);
                break;
            case RunWriteOutcome.Duplicate:
                _duplicate.Inc();
                await WriteAcceptedAsync(context, StatusCodes.Status200OK, run.RunId, principal.ProjectId!, duplicate: true);
                break;
            default:
                _conflict.Inc();
                Log.RunConflict(_logger, context.TraceIdentifier, principal.ProjectId!, run.RunId);
                await Problems.Conflict(context, "run-conflict",
                    $"Run '{run.RunId}' is already stored with different content; the stored run was not changed.");
                break;
        }
    }

    private static Task WriteAcceptedAsync(HttpContext context, int status, string runId, string projectId, bool duplicate) =>
        JsonResponse.WriteAsync(context, status, (runId, projectId, duplicate), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("run_id"u8, s.runId);
            json.WriteString("project_id"u8, s.projectId);
            json.WriteBoolean("duplicate"u8, s.duplicate);
            json.WriteEndObject();
        });
}
