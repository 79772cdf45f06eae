using System.Text.Json;
using FastIngest.Auth;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Storage;

namespace FastIngest.Reading;

/// <summary>
/// Run history. <c>GET /v1/runs</c>: newest first, filtered by status, branch and time, keyset-paginated with an
/// opaque cursor (stable while new runs arrive). <c>GET /v1/runs/{run_id}</c>: one run. Reads use their own
/// WAL connections and never block ingest.
/// </summary>
public sealed class RunEndpoints
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 1000;
    private readonly RequestAuthentication _auth;
    private readonly ProjectResolver _projects;
    private readonly IRunQueries _runs;
    private readonly PagingCursors _cursors;

    public RunEndpoints(RequestAuthentication auth, ProjectResolver projects, IRunQueries runs, PagingCursors cursors)
    {
        _cursors = cursors;
        _auth = auth;
        _projects = projects;
        _runs = runs;
    }

    public async Task ListAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Read) is not { } principal)
        {
            return;
        }

        var query = new QueryParameters(context.Request.Query, "project_id", "status", "branch", "since", "until", "limit", "cursor");
        var passed = query.Status();
        var branch = query.Text("branch", 255);
        var since = query.Instant("since");
        var until = query.Instant("until");
        var limit = query.WholeNumber("limit", 1, MaxLimit, DefaultLimit);
        var cursorText = query.Text("cursor", 64);
        if (since is not null && until is not null && since >= until)
        {
            query.Add("until", "must be later than since");
        }

        if (query.HasErrors)
        {
            await Problems.Validation(context, query.Errors);
            return;
        }

        if (await _projects.ResolveAsync(context, principal) is not var (projectKey, projectId))
        {
            return;
        }

        // The branch goes last, length-prefixed, so no two filter sets write the same text.
        var filters = $"runs|{projectKey}|{passed}|{since}|{until}|{branch?.Length}:{branch}";
        (long, long)? before = null;
        if (cursorText is not null)
        {
            if (!_cursors.TryDecode(cursorText, filters, out var position))
            {
                await Problems.Validation(context, [new FieldError("cursor", "is not a cursor issued for these filters")]);
                return;
            }

            before = position;
        }

        // One extra row tells whether another page exists without a second query.
        var rows = await _runs.ListRunsAsync(new RunListQuery(projectKey, passed, branch, since, until, limit + 1, before));
        var page = rows.Count > limit ? rows.Take(limit).ToList() : rows;
        var next = rows.Count > limit ? _cursors.Encode(page[^1].Run.TimestampMs, page[^1].Id, filters) : null;
        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (page, projectId, next), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("project_id"u8, s.projectId);
            json.WriteStartArray("runs"u8);
            foreach (var listed in s.page)
            {
                WriteRun(json, listed.Run, s.projectId);
            }

            json.WriteEndArray();
            json.WriteString("next_cursor"u8, s.next);
            json.WriteEndObject();
        });
    }

    public async Task GetAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Read) is not { } principal)
        {
            return;
        }

        if (await _projects.ResolveAsync(context, principal) is not var (projectKey, projectId))
        {
            return;
        }

        var runId = (string)context.Request.RouteValues["run_id"]!;
        var run = await _runs.FindRunAsync(projectKey, runId);
        if (run is null)
        {
            await Problems.NotFound(context, $"Run '{runId}'");
            return;
        }

        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (run, projectId), static (json, s) => WriteRun(json, s.run, s.projectId));
    }

    internal static void WriteRun(Utf8JsonWriter json, StoredRun run, string projectId)
    {
        json.WriteStartObject();
        json.WriteString("run_id"u8, run.RunId);
        json.WriteString("project_id"u8, projectId);
        json.WriteString("status"u8, run.Status);
        json.WriteNumber("duration_ms"u8, run.DurationMs);
        json.WriteTimestamp("timestamp"u8, run.TimestampMs);
        json.WriteString("branch"u8, run.Branch);
        json.WriteString("commit_sha"u8, run.CommitSha);
        json.WriteString("build_url"u8, run.BuildUrl);
        json.WriteCounts(run.Counts);
        json.WriteTimestamp("received_at"u8, run.ReceivedAtMs);
        json.WriteNumber("shard_count"u8, run.ShardCount);
        if (run.Shards is { } shards)
        {
            // Each upload of a sharded run as it was sent; the fields above are the merged run.
            json.WriteStartArray("shards"u8);
            foreach (var shard in shards)
            {
                json.WriteStartObject();
                json.WriteString("shard"u8, shard.Name);
                json.WriteString("status"u8, shard.Status);
                json.WriteNumber("duration_ms"u8, shard.DurationMs);
                json.WriteCounts(shard.Counts);
                json.WriteString("build_url"u8, shard.BuildUrl);
                json.WriteTimestamp("received_at"u8, shard.ReceivedAtMs);
                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        json.WriteEndObject();
    }
}
