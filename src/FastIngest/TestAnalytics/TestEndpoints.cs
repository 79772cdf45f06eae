using System.Globalization;
using System.Text.Json;
using FastIngest.Auth;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Reading;
using FastIngest.Storage;
using FastIngest.TestCases;

namespace FastIngest.TestAnalytics;

/// <summary>
/// Per-test reads across runs, all answered from the per-test daily roll-ups:
/// <c>GET /v1/tests?state=flaky|broken|new|fixed</c> (tests with their state, counts and durations),
/// <c>GET /v1/tests/flaky</c> and <c>/slowest</c> (the earlier shapes, on the new model),
/// <c>GET /v1/tests/{test_id}</c> (one test with its days), <c>GET /v1/tests/{test_id}/executions</c> (its
/// history), <c>POST /v1/tests/{test_id}/reset-flaky</c> (org or admin tokens) and <c>GET /v1/failures</c>
/// (failure groups). Same tenancy as runs: the project is the token's own or the <c>project_id</c> parameter,
/// and a test of another project is a 404.
/// </summary>
public sealed class TestEndpoints
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    /// <summary>Tests named per failure group in <c>/v1/failures</c>.</summary>
    private const int TestsPerGroup = 10;

    private readonly RequestAuthentication _auth;
    private readonly ProjectResolver _projects;
    private readonly ITestQueries _tests;
    private readonly TimeProvider _clock;
    private readonly PagingCursors _cursors;
    private readonly HeavyReadSlots _windowReads;
    private readonly TestStateRules _rules;

    public TestEndpoints(RequestAuthentication auth, ProjectResolver projects, ITestQueries tests, TimeProvider clock, PagingCursors cursors,
        HeavyReadSlots windowReads, Configuration.ServerOptions options)
    {
        _auth = auth;
        _projects = projects;
        _tests = tests;
        _clock = clock;
        _cursors = cursors;
        _windowReads = windowReads;
        _rules = options.TestStates;
    }

    public async Task ListAsync(HttpContext context)
    {
        if (await ReadWindowAsync(context, "state", "cursor") is not { } q)
        {
            return;
        }

        var stateText = context.Request.Query["state"].ToString();
        var state = stateText switch
        {
            "" => TestStates.None,
            "flaky" => TestStates.Flaky,
            "broken" => TestStates.Broken,
            "new" => TestStates.New,
            "fixed" => TestStates.Fixed,
            _ => (TestStates)(-1),
        };
        var filters = $"tests|{q.ProjectKey}|{stateText}|{q.Window}|{q.Branch}";
        long offset = 0;
        var errors = new List<FieldError>();
        if (state == (TestStates)(-1))
        {
            errors.Add(new FieldError("state", "must be flaky, broken, new or fixed"));
        }

        if (context.Request.Query["cursor"].ToString() is { Length: > 0 } cursor)
        {
            if (cursor.Length > 64 || !_cursors.TryDecode(cursor, filters, out var position))
            {
                errors.Add(new FieldError("cursor", "is not a cursor issued for these filters"));
            }
            else
            {
                offset = position.First;
            }
        }

        if (errors.Count > 0)
        {
            await Problems.Validation(context, errors);
            return;
        }

        if (await SummarizeAsync(context, q) is not { } tests)
        {
            return;
        }

        var selected = TestWindow.Select(tests, state);
        var page = selected.Skip((int)Math.Min(offset, int.MaxValue)).Take(q.Limit).ToList();
        var next = offset + page.Count < selected.Count ? _cursors.Encode(offset + page.Count, 0, filters) : null;
        var ids = page.ConvertAll(static t => t.TestId);
        var names = await _tests.TestsAsync(q.ProjectKey, ids);
        var durations = await _tests.WindowDurationsAsync(q.ProjectKey, q.Branch ?? "", q.SinceDay, ids);
        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (q, page, names, durations, next, state, total: selected.Count), static (json, s) =>
        {
            WriteWindowHeader(json, s.q);
            json.WriteString("state"u8, s.state == TestStates.None ? null : StateName(s.state));
            json.WriteNumber("total"u8, s.total);
            json.WriteStartArray("tests"u8);
            foreach (var test in s.page)
            {
                json.WriteStartObject();
                WriteTest(json, test, s.names.GetValueOrDefault(test.TestId), s.durations.GetValueOrDefault(test.TestId));
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteString("next_cursor"u8, s.next);
            json.WriteEndObject();
        });
    }

    /// <summary><c>GET /v1/tests/flaky</c>: the flaky state's list in the shape it had before tests were first-class.</summary>
    public async Task FlakyAsync(HttpContext context)
    {
        if (await ReadWindowAsync(context) is not { } q || await SummarizeAsync(context, q) is not { } tests)
        {
            return;
        }

        var flaky = TestWindow.Select(tests, TestStates.Flaky).Take(q.Limit).ToList();
        await WriteLegacyListAsync(context, q, flaky, static (json, test) =>
        {
            json.WriteNumber("flips"u8, test.Flakes);
            json.WriteNumber("flaky_commits"u8, test.Totals.FlakyCommits);
            json.WriteNumber("retry_passes"u8, test.Totals.RetryPasses);
            json.WriteNumber("executions"u8, test.Executions);
            json.WriteNumber("failures"u8, test.Failures);
            json.WriteTimestamp("last_flaky_at"u8, test.LastFlakyMs);
            json.WriteTimestamp("last_seen_at"u8, test.LastMs);
        });
    }

    /// <summary><c>GET /v1/tests/slowest</c>: tests by p95 duration (one pass over the window's duration histograms).</summary>
    public async Task SlowestAsync(HttpContext context)
    {
        if (await ReadWindowAsync(context) is not { } q)
        {
            return;
        }

        if (await ReadHistoryAsync(context, q, () => _tests.WindowDurationsAsync(q.ProjectKey, q.Branch ?? "", q.SinceDay, testIds: null))
            is not { } durations)
        {
            return;
        }

        var slowest = durations.Where(static d => d.Value.Samples > 0).ToList();
        slowest.Sort(static (a, b) => a.Value.P95Ms != b.Value.P95Ms ? b.Value.P95Ms.CompareTo(a.Value.P95Ms)
            : a.Value.MaxMs != b.Value.MaxMs ? b.Value.MaxMs.CompareTo(a.Value.MaxMs)
            : a.Key.CompareTo(b.Key));
        var page = slowest.Take(q.Limit).ToList();
        var names = await _tests.TestsAsync(q.ProjectKey, page.ConvertAll(static p => p.Key));
        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (q, page, names), static (json, s) =>
        {
            WriteWindowHeader(json, s.q);
            json.WriteStartArray("tests"u8);
            foreach (var (testId, d) in s.page)
            {
                var name = s.names.GetValueOrDefault(testId);
                json.WriteStartObject();
                json.WriteString("test_id"u8, TestIds.Format(testId));
                json.WriteString("suite"u8, name?.Suite);
                json.WriteString("name"u8, name?.Name);
                json.WriteNumber("p95_ms"u8, d.P95Ms);
                json.WriteNumber("max_ms"u8, d.MaxMs);
                json.WriteNumber("mean_ms"u8, Math.Round((double)d.SumMs / d.Samples, 1));
                json.WriteNumber("executions"u8, d.Samples);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    /// <summary><c>GET /v1/tests/{test_id}?window=&amp;branch=</c>: the test, its state over the window and its days.</summary>
    public async Task GetAsync(HttpContext context)
    {
        if (await ReadWindowAsync(context) is not { } q || await FindTestAsync(context, q.ProjectKey) is not { } test)
        {
            return;
        }

        await _tests.FoldPendingAsync(); // a run uploaded a moment ago is part of the answer
        var days = await HeavyReadSlots.RunAsync(() => _tests.TestDaysAsync(test.Id, q.Branch ?? "", q.SinceDay));
        var summary = TestWindow.Summarize([TestWindow.Sum(test.Id, test.FirstSeenMs, test.FlakyResetMs, days)], q.SinceMs, q.NowMs, _rules)[0];
        var merged = new DurationPercentiles();
        foreach (var day in days)
        {
            merged.Add(day.Histogram, day.DurationMax, day.DurationSum);
        }

        var durations = merged.TakeResult();
        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (q, test, summary, days, durations), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("project_id"u8, s.q.ProjectId);
            json.WriteString("window"u8, s.q.Window);
            json.WriteTimestamp("since"u8, s.q.SinceMs);
            json.WriteString("branch"u8, s.q.Branch);
            WriteTest(json, s.summary, s.test, s.durations);
            json.WriteTimestamp("flaky_reset_at"u8, s.test.FlakyResetMs);
            json.WriteString("flaky_reset_by"u8, s.test.FlakyResetBy);
            json.WriteStartArray("days"u8);
            var percentiles = new DurationPercentiles();
            foreach (var day in s.days)
            {
                percentiles.Add(day.Histogram, day.DurationMax, day.DurationSum);
                var d = percentiles.TakeResult();
                json.WriteStartObject();
                json.WriteString("date"u8, DailyRollups.DateOf(day.Day));
                json.WriteNumber("executions"u8, day.Executions);
                json.WriteNumber("failures"u8, day.Failures);
                json.WriteNumber("skipped"u8, day.Skipped);
                json.WriteNumber("infra_executions"u8, day.Infra);
                json.WriteNumber("flakes"u8, day.RetryPasses + day.FlakyCommits);
                json.WriteNumber("p50_ms"u8, d.P50Ms);
                json.WriteNumber("p95_ms"u8, d.P95Ms);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    /// <summary><c>GET /v1/tests/{test_id}/executions?limit=&amp;cursor=</c>: newest run first, every attempt.</summary>
    public async Task ExecutionsAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Read) is not { } principal)
        {
            return;
        }

        var query = new QueryParameters(context.Request.Query, "project_id", "limit", "cursor");
        var limit = query.WholeNumber("limit", 1, MaxLimit, DefaultLimit);
        var cursorText = query.Text("cursor", 64);
        if (query.HasErrors)
        {
            await Problems.Validation(context, query.Errors);
            return;
        }

        if (await _projects.ResolveAsync(context, principal) is not var (projectKey, projectId)
            || await FindTestAsync(context, projectKey) is not { } test)
        {
            return;
        }

        var filters = $"executions|{projectKey}|{test.Id}";
        RunPosition? before = null;
        if (cursorText is not null)
        {
            if (!_cursors.TryDecode(cursorText, filters, out var position))
            {
                await Problems.Validation(context, [new FieldError("cursor", "is not a cursor issued for this test")]);
                return;
            }

            before = new RunPosition(position.First, position.Second);
        }

        await _tests.FoldPendingAsync(); // the history finds its days through the roll-ups: fold what is new first
        var (executions, next) = await HeavyReadSlots.RunAsync(() => _tests.TestExecutionsAsync(projectKey, test.Id, before, limit));
        var nextCursor = next is { } n ? _cursors.Encode(n.Day, n.RunKey, filters) : null;
        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (projectId, test, executions, nextCursor), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("project_id"u8, s.projectId);
            json.WriteString("test_id"u8, TestIds.Format(s.test.Id));
            json.WriteString("suite"u8, s.test.Suite);
            json.WriteString("name"u8, s.test.Name);
            json.WriteStartArray("executions"u8);
            foreach (var e in s.executions)
            {
                json.WriteStartObject();
                json.WriteString("run_id"u8, e.RunId);
                json.WriteTimestamp("timestamp"u8, e.RunTimestampMs);
                json.WriteString("branch"u8, e.Branch);
                json.WriteString("commit_sha"u8, e.CommitSha);
                json.WriteString("status"u8, e.Status.ToText());
                json.WriteNumber("duration_ms"u8, e.DurationMs);
                json.WriteNumber("attempt"u8, e.Attempt);
                json.WriteString("failure_message"u8, e.FailureMessage);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteString("next_cursor"u8, s.nextCursor);
            json.WriteEndObject();
        });
    }

    /// <summary>
    /// <c>POST /v1/tests/{test_id}/reset-flaky</c>: flakes before now stop counting (a fix landed). Org and admin
    /// tokens; recorded with the token's id and the time.
    /// </summary>
    public async Task ResetFlakyAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Management) is not { } principal)
        {
            return;
        }

        if (!principal.CanManage())
        {
            await Problems.Forbidden(context, "Resetting a test's flaky state needs an org or admin token.");
            return;
        }

        if (await _projects.ResolveAsync(context, principal) is not var (projectKey, projectId)
            || await FindTestAsync(context, projectKey) is not { } test
            || await RequestAuthentication.RefuseIfRetiredAsync(context, principal))
        {
            return;
        }

        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (!await _tests.ResetFlakyAsync(projectKey, test.Id, now, principal.TokenId))
        {
            await Problems.NotFound(context, $"Test '{TestIds.Format(test.Id)}'");
            return;
        }

        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (projectId, test, now, by: principal.TokenId), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("project_id"u8, s.projectId);
            json.WriteString("test_id"u8, TestIds.Format(s.test.Id));
            json.WriteString("suite"u8, s.test.Suite);
            json.WriteString("name"u8, s.test.Name);
            json.WriteTimestamp("flaky_reset_at"u8, s.now);
            json.WriteString("flaky_reset_by"u8, s.by);
            json.WriteEndObject();
        });
    }

    /// <summary><c>GET /v1/failures?window=&amp;limit=</c>: failure groups, most occurrences first, with the tests they hit.</summary>
    public async Task FailuresAsync(HttpContext context)
    {
        if (context.Request.Query.ContainsKey("branch"))
        {
            // Failure groups are kept per project and day, not per branch: say so rather than ignore the filter.
            await Problems.Validation(context, [new FieldError("branch", "is not supported here: failure groups cover every branch")]);
            return;
        }

        if (await ReadWindowAsync(context) is not { } q)
        {
            return;
        }

        if (await ReadHistoryAsync(context, q, () => _tests.FailureOccurrencesAsync(q.ProjectKey, q.SinceDay)) is not { } rows)
        {
            return;
        }

        var groups = FailureGroupTotal.Top(rows, q.Limit);
        var infos = await _tests.FailureGroupsAsync(q.ProjectKey, groups.ConvertAll(static g => g.GroupId));
        var names = await _tests.TestsAsync(q.ProjectKey, groups.SelectMany(static g => g.Tests.Take(TestsPerGroup).Select(static t => t.TestId)).Distinct().ToList());
        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (q, groups, infos, names), static (json, s) =>
        {
            WriteWindowHeader(json, s.q);
            json.WriteStartArray("groups"u8);
            foreach (var group in s.groups)
            {
                var info = s.infos.GetValueOrDefault(group.GroupId);
                json.WriteStartObject();
                json.WriteString("group_id"u8, FailureGroupIds.Format(group.GroupId));
                json.WriteString("pattern"u8, info?.Pattern);
                json.WriteString("example"u8, info?.Example);
                json.WriteNumber("occurrences"u8, group.Occurrences);
                json.WriteNumber("tests_affected"u8, group.Tests.Count);
                json.WriteTimestamp("first_seen_at"u8, group.FirstMs);
                json.WriteTimestamp("last_seen_at"u8, group.LastMs);
                json.WriteStartArray("tests"u8);
                foreach (var test in group.Tests.Take(TestsPerGroup))
                {
                    var name = s.names.GetValueOrDefault(test.TestId);
                    json.WriteStartObject();
                    json.WriteString("test_id"u8, TestIds.Format(test.TestId));
                    json.WriteString("suite"u8, name?.Suite);
                    json.WriteString("name"u8, name?.Name);
                    json.WriteNumber("occurrences"u8, test.Occurrences);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    /// <summary>The window's roll-ups summed per test and classified; null after a 503 has been written.</summary>
    private Task<List<TestSummary>?> SummarizeAsync(HttpContext context, WindowQuery q) =>
        ReadHistoryAsync(context, q, async () => TestWindow.Summarize(await _tests.WindowTotalsAsync(q.ProjectKey, q.Branch ?? "", q.SinceDay), q.SinceMs, q.NowMs, _rules));

    /// <summary>
    /// A window read: roll-up reads are small, but a 365-day window over tens of thousands of tests is not, so each
    /// takes one of the fair history-read slots and runs on a thread of its own, after folding what is pending.
    /// Null after the 503 has been written.
    /// </summary>
    private async Task<T?> ReadHistoryAsync<T>(HttpContext context, WindowQuery q, Func<ValueTask<T>> read)
        where T : class
    {
        if (await _windowReads.TryEnterAsync(q.TenantKey, context.RequestAborted) is not { } lease)
        {
            await Problems.Unavailable(context, "reads-busy", "History reads are busy; retry shortly.", 2);
            return null;
        }

        using (lease)
        {
            await _tests.FoldPendingAsync(); // queued to the writer; this request writes nothing itself
            return await HeavyReadSlots.RunAsync(read);
        }
    }

    /// <summary>The test named by the route in the project, or null after the 404 has been written.</summary>
    private async Task<TestInfo?> FindTestAsync(HttpContext context, long projectKey)
    {
        var text = context.Request.RouteValues["test_id"] as string ?? "";
        if (TestIds.TryParse(text, out var id) && (await _tests.TestsAsync(projectKey, [id])).GetValueOrDefault(id) is { } test)
        {
            return test;
        }

        await Problems.NotFound(context, $"Test '{text}'");
        return null;
    }

    private static void WriteWindowHeader(Utf8JsonWriter json, WindowQuery q)
    {
        json.WriteStartObject();
        json.WriteString("project_id"u8, q.ProjectId);
        json.WriteString("window"u8, q.Window);
        json.WriteTimestamp("since"u8, q.SinceMs);
        json.WriteString("branch"u8, q.Branch);
    }

    private static void WriteTest(Utf8JsonWriter json, TestSummary test, TestInfo? info, Durations durations)
    {
        var t = test.Totals;
        json.WriteString("test_id"u8, TestIds.Format(test.TestId));
        json.WriteString("suite"u8, info?.Suite);
        json.WriteString("name"u8, info?.Name);
        json.WriteString("file"u8, info?.File);
        json.WriteStartArray("states"u8);
        foreach (var state in (ReadOnlySpan<TestStates>)[TestStates.Flaky, TestStates.Broken, TestStates.New, TestStates.Fixed])
        {
            if ((test.States & state) != 0)
            {
                json.WriteStringValue(StateName(state));
            }
        }

        json.WriteEndArray();
        json.WriteNumber("executions"u8, t.Executions);
        json.WriteNumber("failures"u8, t.Failures);
        json.WriteNumber("failure_rate"u8, Math.Round(test.FailureRate, 4));
        json.WriteNumber("skipped"u8, t.Skipped);
        json.WriteNumber("infra_executions"u8, t.Infra);
        json.WriteNumber("flakes"u8, t.Flakes);
        json.WriteNumber("flaky_commits"u8, t.FlakyCommits);
        json.WriteNumber("retry_passes"u8, t.RetryPasses);
        json.WriteNumber("p50_ms"u8, durations.P50Ms);
        json.WriteNumber("p95_ms"u8, durations.P95Ms);
        json.WriteTimestamp("first_seen_at"u8, t.FirstSeenMs);
        json.WriteTimestamp("last_seen_at"u8, t.LastMs == 0 ? null : t.LastMs);
        json.WriteTimestamp("last_failure_at"u8, t.LastFailedMs);
        json.WriteTimestamp("last_flaky_at"u8, t.LastFlakyAnyMs);
    }

    private async Task WriteLegacyListAsync(HttpContext context, WindowQuery q, List<TestSummary> tests, Action<Utf8JsonWriter, TestSummary> writeFields)
    {
        var names = await _tests.TestsAsync(q.ProjectKey, tests.ConvertAll(static t => t.TestId));
        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (q, tests, writeFields, names), static (json, s) =>
        {
            WriteWindowHeader(json, s.q);
            json.WriteStartArray("tests"u8);
            foreach (var test in s.tests)
            {
                var name = s.names.GetValueOrDefault(test.TestId);
                json.WriteStartObject();
                json.WriteString("test_id"u8, TestIds.Format(test.TestId));
                json.WriteString("suite"u8, name?.Suite);
                json.WriteString("name"u8, name?.Name);
                s.writeFields(json, test);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    private static string StateName(TestStates state) => state switch
    {
        TestStates.Flaky => "flaky",
        TestStates.Broken => "broken",
        TestStates.New => "new",
        _ => "fixed",
    };

    /// <summary>window (1h..365d, by whole UTC days), branch, limit and the project; null after the error response.</summary>
    private async Task<WindowQuery?> ReadWindowAsync(HttpContext context, params string[] extra)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Read) is not { } principal)
        {
            return null;
        }

        var query = new QueryParameters(context.Request.Query, ["project_id", "window", "branch", "limit", .. extra]);
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

        // Roll-ups are by UTC day: the window starts at the beginning of the day its length reaches back into.
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var sinceDay = DailyRollups.DayOf(now - (long)length.TotalMilliseconds);
        return new WindowQuery(projectKey, projectId, window, sinceDay, sinceDay * DailyRollups.MsPerDay, now, branch, limit,
            principal.OrgKey ?? projectKey);
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

    /// <summary>A window read; <c>TenantKey</c> is whose share of the history-read slots it uses: the caller's org (an admin: the project).</summary>
    private sealed record WindowQuery(long ProjectKey, string ProjectId, string Window, long SinceDay, long SinceMs, long NowMs, string? Branch,
        int Limit, long TenantKey);
}
