using FastIngest.Auth;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Reading;
using FastIngest.Storage;

namespace FastIngest.TestCases;

/// <summary>
/// <c>GET /v1/runs/{run_id}/tests</c>: a run's test cases in test order (tests are numbered as first seen, so
/// that is upload order for a project's first run), each attempt in turn, filtered by status, keyset-paginated.
/// Per-test reads across runs are <see cref="TestAnalytics.TestEndpoints"/>.
/// </summary>
public sealed class TestCaseEndpoints
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;
    private const string TestsSuffix = "/tests";
    private readonly RequestAuthentication _auth;
    private readonly ProjectResolver _projects;
    private readonly ITestQueries _tests;
    private readonly PagingCursors _cursors;

    public TestCaseEndpoints(RequestAuthentication auth, ProjectResolver projects, ITestQueries tests, PagingCursors cursors)
    {
        _cursors = cursors;
        _auth = auth;
        _projects = projects;
        _tests = tests;
    }

    /// <summary>
    /// Run ids may contain '/', so <c>/v1/runs/{**run_id}</c> captures everything; a path ending in
    /// <c>/tests</c> is the run's test list. (A run whose own id ends in "/tests" is still listed by
    /// <c>GET /v1/runs</c>.)
    /// </summary>
    public static bool IsTestListPath(HttpContext context) =>
        context.Request.RouteValues["run_id"] is string path && path.Length > TestsSuffix.Length
        && path.EndsWith(TestsSuffix, StringComparison.Ordinal);

    public async Task ListForRunAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Read) is not { } principal)
        {
            return;
        }

        var path = (string)context.Request.RouteValues["run_id"]!;
        var runId = path[..^TestsSuffix.Length];
        var query = new QueryParameters(context.Request.Query, "project_id", "status", "limit", "cursor");
        TestCaseStatus? status = null;
        if (query.Text("status", 16) is { } statusText)
        {
            if (TestCaseStatuses.TryParse(statusText, out var parsed))
            {
                status = parsed;
            }
            else
            {
                query.Add("status", "must be passed, failed, skipped or error");
            }
        }

        var limit = query.WholeNumber("limit", 1, MaxLimit, DefaultLimit);
        var cursorText = query.Text("cursor", 64);
        if (query.HasErrors)
        {
            await Problems.Validation(context, query.Errors);
            return;
        }

        if (await _projects.ResolveAsync(context, principal) is not var (projectKey, projectId))
        {
            return;
        }

        var filters = $"tests|{projectKey}|{status}|{runId}"; // run ids never contain a '|' 
        var after = ExecutionPosition.Start;
        if (cursorText is not null)
        {
            if (!_cursors.TryDecode(cursorText, filters, out var position))
            {
                await Problems.Validation(context, [new FieldError("cursor", "is not a cursor issued for this run and these filters")]);
                return;
            }

            after = new ExecutionPosition(position.Second, position.First);
        }

        var rows = await _tests.ListRunExecutionsAsync(projectKey, runId, status, after, limit + 1);
        if (rows is null)
        {
            await Problems.NotFound(context, $"Run '{runId}'");
            return;
        }

        var more = rows.Count > limit;
        var count = more ? limit : rows.Count;
        // (Test and attempt first, the row second: a cursor from before shards, (position, 0), still means the same place.)
        var next = more ? _cursors.Encode(rows[count - 1].Position.TestAttempt, rows[count - 1].Position.RowKey, filters) : null;
        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (rows, count, runId, projectId, next), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("run_id"u8, s.runId);
            json.WriteString("project_id"u8, s.projectId);
            json.WriteStartArray("tests"u8);
            for (var i = 0; i < s.count; i++)
            {
                var test = s.rows[i].Case;
                json.WriteStartObject();
                json.WriteString("test_id"u8, TestAnalytics.TestIds.Format(s.rows[i].TestId));
                if (s.rows[i].Shard is { } shard)
                {
                    json.WriteString("shard"u8, shard);
                }

                json.WriteString("suite"u8, test.Suite);
                json.WriteString("name"u8, test.Name);
                json.WriteString("file"u8, test.File);
                json.WriteString("status"u8, test.Status.ToText());
                json.WriteNumber("duration_ms"u8, test.DurationMs);
                json.WriteNumber("attempt"u8, test.Attempt);
                json.WriteString("failure_message"u8, test.FailureMessage);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteString("next_cursor"u8, s.next);
            json.WriteEndObject();
        });
    }
}
