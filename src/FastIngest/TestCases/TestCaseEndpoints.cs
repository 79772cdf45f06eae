using System.Globalization;
using System.Text.Json;
using FastIngest.Auth;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Reading;
using FastIngest.Storage;

namespace FastIngest.TestCases;

/// <summary>
/// Per-test reads. <c>GET /v1/runs/{run_id}/tests</c>: a run's test cases in upload order, filtered by status,
/// keyset-paginated. <c>GET /v1/tests/flaky?window=</c>: tests that both passed and failed on one commit (or
/// across attempts in one run), most flips first. <c>GET /v1/tests/slowest?window=</c>: tests by p95 duration.
/// </summary>
public sealed class TestCaseEndpoints
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;
    private const string TestsSuffix = "/tests";
    private readonly RequestAuthentication _auth;
    private readonly ProjectResolver _projects;
    private readonly ITestCaseQueries _tests;
    private readonly TimeProvider _clock;
    private readonly PagingCursors _cursors;
    private readonly HeavyReadSlots _heavyReads;

    public TestCaseEndpoints(RequestAuthentication auth, ProjectResolver projects, ITestCaseQueries tests, TimeProvider clock,
        PagingCursors cursors, HeavyReadSlots heavyReads)
    {
        _heavyReads = heavyReads;
        _cursors = cursors;
        _auth = auth;
        _projects = projects;
        _tests = tests;
        _clock = clock;
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
        long after = -1;
        if (cursorText is not null)
        {
            if (!_cursors.TryDecode(cursorText, filters, out var position))
            {
                await Problems.Validation(context, [new FieldError("cursor", "is not a cursor issued for this run and these filters")]);
                return;
            }

            after = position.First;
        }

        var rows = _tests.ListTestCases(projectKey, runId, status, after, limit + 1);
        if (rows is null)
        {
            await Problems.NotFound(context, $"Run '{runId}'");
            return;
        }

        var more = rows.Count > limit;
        var count = more ? limit : rows.Count;
        var next = more ? _cursors.Encode(rows[count - 1].Seq, 0, filters) : null;
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

    public async Task FlakyAsync(HttpContext context)
    {
        if (await ReadWindowQueryAsync(context) is { } q && await EnterHeavyReadAsync(context, q) is { } lease)
        {
            IReadOnlyList<FlakyTest> flaky;
            using (lease)
            {
                flaky = await HeavyReadSlots.RunAsync(() => _tests.FlakyTests(q.ProjectKey, q.SinceMs, q.Branch, q.Limit));
            }

            await WriteWindowListAsync(context, q, flaky, static (json, test) =>
            {
                json.WriteNumber("flips"u8, test.Flips);
                json.WriteNumber("flaky_commits"u8, test.FlakyGroups);
                json.WriteNumber("executions"u8, test.Executions);
                json.WriteNumber("failures"u8, test.Failures);
                json.WriteTimestamp("last_flaky_at"u8, test.LastFlakyMs);
                json.WriteTimestamp("last_seen_at"u8, test.LastSeenMs);
            });
        }
    }

    public async Task SlowestAsync(HttpContext context)
    {
        if (await ReadWindowQueryAsync(context) is { } q && await EnterHeavyReadAsync(context, q) is { } lease)
        {
            IReadOnlyList<SlowTest> slowest;
            using (lease)
            {
                slowest = await HeavyReadSlots.RunAsync(() => _tests.SlowestTests(q.ProjectKey, q.SinceMs, q.Branch, q.Limit));
            }

            await WriteWindowListAsync(context, q, slowest, static (json, test) =>
            {
                json.WriteNumber("p95_ms"u8, test.P95Ms);
                json.WriteNumber("max_ms"u8, test.MaxMs);
                json.WriteNumber("mean_ms"u8, Math.Round(test.MeanMs, 1));
                json.WriteNumber("executions"u8, test.Executions);
            });
        }
    }

    /// <summary>The window's header, then one object per test: suite, name and what <paramref name="writeFields"/> adds.</summary>
    private static Task WriteWindowListAsync<T>(HttpContext context, WindowQuery q, IReadOnlyList<T> tests, Action<Utf8JsonWriter, T> writeFields)
        where T : ITestIdentity =>
        JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (q, tests, writeFields), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("project_id"u8, s.q.ProjectId);
            json.WriteString("window"u8, s.q.Window);
            json.WriteTimestamp("since"u8, s.q.SinceMs);
            json.WriteString("branch"u8, s.q.Branch);
            json.WriteStartArray("tests"u8);
            foreach (var test in s.tests)
            {
                json.WriteStartObject();
                json.WriteString("suite"u8, test.Suite);
                json.WriteString("name"u8, test.Name);
                s.writeFields(json, test);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        });

    /// <summary>A heavy-read slot for the project, or null after the 503 has been written.</summary>
    private async Task<FairSlots.Lease?> EnterHeavyReadAsync(HttpContext context, WindowQuery query)
    {
        if (await _heavyReads.TryEnterAsync(query.TenantKey, context.RequestAborted) is { } lease)
        {
            return lease;
        }

        await Problems.Unavailable(context, "reads-busy", "History reads are busy; retry shortly.", 2);
        return null;
    }

    private async Task<WindowQuery?> ReadWindowQueryAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Read) is not { } principal)
        {
            return null;
        }

        var query = new QueryParameters(context.Request.Query, "project_id", "window", "branch", "limit");
        var window = query.Text("window", 6) ?? "7d";
        var branch = query.Text("branch", 255);
        var limit = query.WholeNumber("limit", 1, MaxLimit, DefaultLimit);
        if (!TryParseWindow(window, out var length))
        {
            query.Add("window", "must be hours or days, from 1h to 365d, e.g. 24h or 7d");
        }

        if (query.HasErrors)
        {
            await Problems.Validation(context, query.Errors);
            return null;
        }

        if (await _projects.ResolveAsync(context, principal) is not var (projectKey, projectId))
        {
            return null;
        }

        var since = _clock.GetUtcNow() - length;
        return new WindowQuery(projectKey, projectId, window, since.ToUnixTimeMilliseconds(), branch, limit, principal.OrgKey ?? projectKey);
    }

    internal static bool TryParseWindow(string text, out TimeSpan length)
    {
        length = default;
        if (text.Length < 2
            || !int.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount)
            || amount < 1)
        {
            return false;
        }

        length = text[^1] switch
        {
            'h' => TimeSpan.FromHours(amount),
            'd' => TimeSpan.FromDays(amount),
            _ => TimeSpan.Zero,
        };
        return length > TimeSpan.Zero && length <= TimeSpan.FromDays(365);
    }

    /// <summary>A window read; <c>TenantKey</c> is whose share of the heavy-read slots it uses: the caller's org (an admin: the project).</summary>
    private sealed record WindowQuery(long ProjectKey, string ProjectId, string Window, long SinceMs, string? Branch, int Limit, long TenantKey);
}
