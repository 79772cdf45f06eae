using System.Globalization;
using System.Text;
using FastIngest.Auth;
using FastIngest.RateLimiting;
using FastIngest.Reading;
using FastIngest.Storage;
using FastIngest.TestAnalytics;
using FastIngest.TestCases;

namespace FastIngest.Dashboard;

/// <summary>
/// The dashboard under <c>/ui</c>: sign in with a token, then a project's overview, runs, one run, tests by
/// state, one test and failure groups. Server-rendered HTML with SVG charts and no script; every page carries a
/// strict Content-Security-Policy; the only state-changing forms (sign-in, sign-out) carry anti-forgery values.
/// A session sees exactly what its token may read: a project token its project, an org token its org's projects,
/// the admin token every project; anything else is the same 404 as a project that does not exist.
/// </summary>
public sealed class DashboardPages
{
    private const string LoginCookie = "fastingest_signin";

    /// <summary>Failed tests shown with their messages on a run's page: the page stays small whatever the run.</summary>
    private const int FailedShown = 50;

    /// <summary>Characters of a message shown in a listing; a test's own page shows its executions' messages in full.</summary>
    private const int MessageShown = 1000;
    private const int PageSize = 50;
    private const long MsPerDay = DailyRollups.MsPerDay;

    private static readonly string s_securityPolicy =
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    private readonly DashboardSessions _sessions;
    private readonly Authenticator _authenticator;
    private readonly ITenantStore _tenants;
    private readonly IRunQueries _runs;
    private readonly ITestQueries _tests;
    private readonly PagingCursors _cursors;
    private readonly Assets _assets;
    private readonly TimeProvider _clock;
    private readonly TestStateRules _rules;
    private readonly HeavyReadSlots _reads;
    private readonly CredentialRateLimiter _limiter;
    private readonly Observability.ServerMetrics _metrics;

    public DashboardPages(DashboardSessions sessions, Authenticator authenticator, ITenantStore tenants, IRunQueries runs, ITestQueries tests,
        PagingCursors cursors, Assets assets, TimeProvider clock, Configuration.ServerOptions options, HeavyReadSlots reads,
        CredentialRateLimiter limiter, Observability.ServerMetrics metrics, Http.ApiContract contract)
    {
        _contract = contract;
        _apiReference = new Lazy<Html>(RenderApiReference);
        _reads = reads;
        _limiter = limiter;
        _metrics = metrics;
        _sessions = sessions;
        _authenticator = authenticator;
        _tenants = tenants;
        _runs = runs;
        _tests = tests;
        _cursors = cursors;
        _assets = assets;
        _clock = clock;
        _rules = options.TestStates;
    }

    private readonly Http.ApiContract _contract;
    private readonly Lazy<Html> _apiReference;

    /// <summary>
    /// <c>GET /ui/api</c>: the API reference, rendered from the OpenAPI document the server serves (no sign-in: the
    /// document is public), with no asset beyond the dashboard's own stylesheet.
    /// </summary>
    public async Task ApiReferenceAsync(HttpContext context)
    {
        var session = await _sessions.FindAsync(context);
        await PageAsync(context, session, null, "API reference", _apiReference.Value);
    }

    /// <summary>The reference, rendered once: the document never changes while the server runs.</summary>
    private Html RenderApiReference()
    {
        using var document = System.Text.Json.JsonDocument.Parse(_contract.Document);
        var root = document.RootElement;
        var body = new Html();
        body.Add($"<h1>API reference</h1><p>Every route, its parameters and what it answers, from <a href=\"/v1/openapi.json\">/v1/openapi.json</a> (OpenAPI {root.GetProperty("openapi").GetString()}). Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>.</p>");
        body.Add($"<nav aria-label=\"Routes\"><ul>");
        foreach (var path in root.GetProperty("paths").EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject().Where(static o => IsMethod(o.Name)))
            {
                body.Add($"<li><a href=\"#{Anchor(operation)}\"><code>{operation.Name.ToUpperInvariant()} {path.Name}</code></a> {Summary(operation.Value)}</li>");
            }
        }

        body.Add($"</ul></nav>");
        foreach (var path in root.GetProperty("paths").EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject().Where(static o => IsMethod(o.Name)))
            {
                body.Add($"<section id=\"{Anchor(operation)}\"><h2><code>{operation.Name.ToUpperInvariant()} {path.Name}</code></h2><p>{Summary(operation.Value)}</p>");
                if (operation.Value.TryGetProperty("description", out var description))
                {
                    body.Add($"<p>{description.GetString()}</p>");
                }

                if (operation.Value.TryGetProperty("x-fastingest-scopes", out var scopes))
                {
                    body.Add($"<p>Tokens: {string.Join(", ", scopes.EnumerateArray().Select(static s => s.GetString()))}</p>");
                }
                else if (!operation.Value.TryGetProperty("security", out _))
                {
                    body.Add($"<p>No token needed.</p>");
                }

                if (operation.Value.TryGetProperty("parameters", out var parameters) && parameters.GetArrayLength() > 0)
                {
                    body.Add($"<table><thead><tr><th scope=\"col\">Parameter</th><th scope=\"col\">In</th><th scope=\"col\">Description</th></tr></thead><tbody>");
                    foreach (var parameter in parameters.EnumerateArray().Select(p => Resolve(root, p)))
                    {
                        body.Add($"<tr><td><code>{Text(parameter, "name")}</code>{(parameter.TryGetProperty("required", out var r) && r.GetBoolean() ? " (required)" : "")}</td><td>{Text(parameter, "in")}</td><td>{Text(parameter, "description")}</td></tr>");
                    }

                    body.Add($"</tbody></table>");
                }

                body.Add($"<table><thead><tr><th scope=\"col\">Status</th><th scope=\"col\">Meaning</th><th scope=\"col\">Body</th></tr></thead><tbody>");
                foreach (var response in operation.Value.GetProperty("responses").EnumerateObject())
                {
                    var resolved = Resolve(root, response.Value);
                    var media = resolved.TryGetProperty("content", out var content) ? string.Join(", ", content.EnumerateObject().Select(static c => c.Name)) : "";
                    body.Add($"<tr><td>{response.Name}</td><td>{Text(resolved, "description")}</td><td><code>{media}</code></td></tr>");
                }

                body.Add($"</tbody></table></section>");
            }
        }

        return body;

        static string Anchor(System.Text.Json.JsonProperty operation) =>
            operation.Value.TryGetProperty("operationId", out var id) ? id.GetString()! : operation.Name;

        static string Summary(System.Text.Json.JsonElement operation) => Text(operation, "summary");

        static bool IsMethod(string name) => name is "get" or "post" or "put" or "patch" or "delete" or "head" or "options";

        static string Text(System.Text.Json.JsonElement element, string name) =>
            element.TryGetProperty(name, out var value) && value.ValueKind == System.Text.Json.JsonValueKind.String ? value.GetString()! : "";

        static System.Text.Json.JsonElement Resolve(System.Text.Json.JsonElement root, System.Text.Json.JsonElement element)
        {
            if (!element.TryGetProperty("$ref", out var reference))
            {
                return element;
            }

            var target = root;
            foreach (var part in reference.GetString()!.TrimStart('#').Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                target = target.GetProperty(part.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal));
            }

            return target;
        }
    }

    /// <summary><c>GET /ui</c>: the sign-in page, or the projects this session may read.</summary>
    public async Task HomeAsync(HttpContext context)
    {
        if ((await _sessions.FindAsync(context)) is null)
        {
            await SignInPageAsync(context, error: null, StatusCodes.Status200OK);
            return;
        }

        if (await OpenSessionAsync(context) is not { } session)
        {
            return;
        }

        if (session.Principal.ProjectId is { } own)
        {
            Redirect(context, Url.Of("projects", own).Value);
            return;
        }

        var projects = await _tenants.ListProjectsAsync(session.Principal.Scope == TokenScope.Admin ? null : session.Principal.OrgKey);
        var body = new Html();
        body.Add($"<h1>Projects</h1>");
        if (projects.Count == 0)
        {
            body.Add($"<p class=\"muted\">No projects yet.</p>");
        }
        else
        {
            body.Add($"<table><thead><tr><th scope=\"col\">Project</th><th scope=\"col\">Organization</th><th scope=\"col\">Id</th></tr></thead><tbody>");
            foreach (var project in projects)
            {
                body.Add($"<tr><td><a href=\"{Url.Of("projects", project.Id)}\">{project.Name}</a></td><td>{project.OrgId}</td><td class=\"muted\">{project.Id}</td></tr>");
            }

            body.Add($"</tbody></table>");
        }

        await PageAsync(context, session, null, "Projects", body);
    }

    /// <summary><c>POST /ui/sign-in</c>: a token pasted into the form becomes a session; the token itself is dropped.</summary>
    public async Task SignInAsync(HttpContext context)
    {
        if (await ReadFormAsync(context) is not { } form)
        {
            await SignInPageAsync(context, "The sign-in form could not be read; please try again.", StatusCodes.Status400BadRequest);
            return;
        }

        if (context.Request.Cookies[LoginCookie] is not { } expected || !DashboardSessions.Matches(form["af"], expected))
        {
            await SignInPageAsync(context, "The sign-in form expired; please try again.", StatusCodes.Status400BadRequest);
            return;
        }

        var token = form["token"].ToString().Trim();
        var result = token.Length is > 0 and <= 200
            ? await _authenticator.AuthenticateAsync("Bearer " + token, context.Connection.RemoteIpAddress)
            : AuthResult.Fail(AuthFailure.Malformed);
        if (result.Principal is not { } principal)
        {
            _metrics.AuthFailures.WithLabels(result.Failure.ToName()).Inc();
            if (result.Failure == AuthFailure.Blocked)
            {
                context.Response.Headers.RetryAfter = result.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
            }

            var (message, status) = result.Failure switch
            {
                AuthFailure.Blocked => ("Too many wrong tokens were tried for this token id; wait a few minutes.", StatusCodes.Status429TooManyRequests),
                AuthFailure.Overloaded => ("The server is busy checking tokens; please sign in again in a moment.", StatusCodes.Status503ServiceUnavailable),
                _ => ("That token was not accepted. Paste a whole FastIngest token (it starts with its scope's prefix).", StatusCodes.Status401Unauthorized),
            };
            if (status == StatusCodes.Status503ServiceUnavailable)
            {
                context.Response.Headers.RetryAfter = "1";
            }

            await SignInPageAsync(context, message, status);
            return;
        }

        // Signing in is a use of the token like any request: its read budget applies, so a loop of sign-ins with
        // one token cannot mint sessions without end (each token also keeps at most 20 sessions).
        if (_limiter.TryAcquire(context, RateLimitPolicy.Read, principal) is { } retryAfter)
        {
            context.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
            await SignInPageAsync(context, "This token's budget is spent for now; try again shortly.", StatusCodes.Status429TooManyRequests);
            return;
        }

        if ((await _sessions.FindAsync(context)) is { } previous)
        {
            _sessions.End(previous); // a new sign-in replaces the browser's session, never adds to it
        }

        var session = _sessions.Start(principal);
        context.Response.Cookies.Append(DashboardSessions.CookieName, session.Id, Cookie(context, DashboardSessions.Lifetime));
        context.Response.Cookies.Delete(LoginCookie, Cookie(context, null));
        Redirect(context, "/ui");
    }

    /// <summary><c>POST /ui/sign-out</c>: ends the session (its anti-forgery value must match).</summary>
    public async Task SignOutAsync(HttpContext context)
    {
        var form = await ReadFormAsync(context);
        if (form is not null && (await _sessions.FindAsync(context)) is { } session && DashboardSessions.Matches(form["af"], session.AntiForgery))
        {
            // Only the session's own form signs it out: a forged cross-site post changes nothing.
            _sessions.End(session);
            context.Response.Cookies.Delete(DashboardSessions.CookieName, Cookie(context, null));
        }

        Redirect(context, "/ui");
    }

    /// <summary><c>GET /ui/projects/{project}</c>: runs per day and pass rate, durations, latest runs, flaky and slow tests, failure groups.</summary>
    public async Task OverviewAsync(HttpContext context)
    {
        if (await OpenProjectAsync(context) is not var (session, project, slot))
        {
            return;
        }

        using var held = slot;

        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var today = DailyRollups.DayOf(now);
        // Folds first (queued to the writer, awaited here), then the scans on the heavy-read thread.
        var daily = (await _runs.DailyStatsAsync(project.Key, "", today - 29, today)).ToDictionary(static d => d.Day);
        await _tests.FoldPendingAsync();
        var overview = await HeavyReadSlots.RunAsync(async () =>
        {
            var latest = await _runs.ListRunsAsync(new RunListQuery(project.Key, null, null, null, null, 10, null));
            var week = TestWindow.Summarize(await _tests.WindowTotalsAsync(project.Key, "", today - 6), (today - 6) * MsPerDay, now, _rules);
            var flaky = TestWindow.Select(week, TestStates.Flaky).Take(10).ToList();
            var slow = (await _tests.WindowDurationsAsync(project.Key, "", today - 6, testIds: null))
                .OrderByDescending(static d => d.Value.P95Ms).Take(10).ToList();
            var names = await _tests.TestsAsync(project.Key, flaky.Select(static t => t.TestId).Concat(slow.Select(static s => s.Key)).Distinct().ToList());
            var groups = await TopGroupsAsync(project.Key, today - 6, 5);
            return (latest, flaky, slow, names, groups);
        });
        held.Dispose(); // the data is read: a slow reader of the page holds no slot

        var days = Enumerable.Range(0, 30).Select(i => today - 29 + i).ToList();
        var perDay = days.Select(d => (Date(d), daily.TryGetValue(d, out var s) ? s.Passed : 0, daily.TryGetValue(d, out var f) ? f.Failed : 0)).ToList();
        long total = perDay.Sum(static d => d.Item2 + d.Item3), passed = perDay.Sum(static d => d.Item2);
        var p50 = days.Select(d => daily.TryGetValue(d, out var s) && s.Total > 0 ? DurationHistogram.Percentile(s.Histogram, s.Total, 50, s.DurationMaxMs) : (long?)null).ToList();
        var p95 = days.Select(d => daily.TryGetValue(d, out var s) && s.Total > 0 ? DurationHistogram.Percentile(s.Histogram, s.Total, 95, s.DurationMaxMs) : (long?)null).ToList();

        var body = new Html();
        body.Add($"<h1>{project.Name}</h1>");
        body.Add($"<div class=\"figures\"><div>{total}<span>runs in 30 days</span></div><div>{(total == 0 ? "–" : (100.0 * passed / total).ToString("0.0", CultureInfo.InvariantCulture) + "%")}<span>pass rate</span></div><div>{overview.flaky.Count}<span>flaky tests this week</span></div></div>");
        body.Add($"<div class=\"grid\"><section class=\"card\"><h2>Runs per day</h2>{Charts.RunsPerDay("Runs per day over the last 30 days, passed and failed", perDay)}</section>");
        body.Add($"<section class=\"card\"><h2>Run duration</h2>{Charts.Lines("duration", "Run duration p50 and p95 per day, in milliseconds", "ms", days.Select(Date).Select(static d => d[5..]).ToList(), [("p50", "#1a56c4", p50), ("p95", "#b42318", p95)])}</section></div>");

        body.Add($"<h2>Latest runs</h2>");
        RunTable(body, project, overview.latest);
        body.Add($"<p><a href=\"{Url.Of("projects", project.Id, "runs")}\">All runs</a></p>");

        body.Add($"<div class=\"grid\"><section class=\"card\"><h2>Flakiest tests (7 days)</h2>");
        if (overview.flaky.Count == 0)
        {
            body.Add($"<p class=\"muted\">No flaky tests this week.</p>");
        }
        else
        {
            body.Add($"<table><thead><tr><th scope=\"col\">Test</th><th scope=\"col\" class=\"num\">Flakes</th></tr></thead><tbody>");
            foreach (var test in overview.flaky)
            {
                var name = overview.names.GetValueOrDefault(test.TestId);
                body.Add($"<tr><td><a href=\"{Url.Of("projects", project.Id, "tests", TestIds.Format(test.TestId))}\">{name?.Name}</a><br><span class=\"muted\">{name?.Suite}</span></td><td class=\"num\">{test.Flakes}</td></tr>");
            }

            body.Add($"</tbody></table>");
        }

        body.Add($"</section><section class=\"card\"><h2>Slowest tests (p95, 7 days)</h2><table><thead><tr><th scope=\"col\">Test</th><th scope=\"col\" class=\"num\">p95</th></tr></thead><tbody>");
        foreach (var (testId, durations) in overview.slow)
        {
            var name = overview.names.GetValueOrDefault(testId);
            body.Add($"<tr><td><a href=\"{Url.Of("projects", project.Id, "tests", TestIds.Format(testId))}\">{name?.Name}</a><br><span class=\"muted\">{name?.Suite}</span></td><td class=\"num\">{Duration(durations.P95Ms)}</td></tr>");
        }

        body.Add($"</tbody></table></section></div>");
        body.Add($"<h2>Top failure groups (7 days)</h2>");
        GroupTable(body, project, overview.groups);
        await PageAsync(context, session, project, project.Name, body);
    }

    /// <summary><c>GET /ui/projects/{project}/runs?status=&amp;branch=&amp;since=&amp;until=&amp;cursor=</c>: run history, newest first.</summary>
    public async Task RunsAsync(HttpContext context)
    {
        if (await OpenProjectAsync(context) is not var (session, project, slot))
        {
            return;
        }

        using var held = slot;

        var query = context.Request.Query;
        var status = query["status"].ToString() is "passed" or "failed" ? query["status"].ToString() : null;
        var branch = query["branch"].ToString() is { Length: > 0 and <= 255 } b ? b : null;
        var since = ParseDate(query["since"]);
        var until = ParseDate(query["until"]);
        var filters = $"ui-runs|{project.Key}|{status}|{branch}|{since}|{until}";
        (long, long)? before = query["cursor"].ToString() is { Length: > 0 and <= 64 } cursor && _cursors.TryDecode(cursor, filters, out var position)
            ? position
            : null;
        var runs = await HeavyReadSlots.RunAsync(() => _runs.ListRunsAsync(new RunListQuery(project.Key, status is null ? null : status == "passed", branch,
            since, until is { } u ? u + MsPerDay : null, PageSize + 1, before)));
        held.Dispose(); // the data is read: a slow reader of the page holds no slot

        var body = new Html();
        body.Add($"<h1>Runs</h1><form class=\"filters\" method=\"get\" action=\"{Url.Of("projects", project.Id, "runs")}\">");
        body.Add($"<label>Status<select name=\"status\"><option value=\"\">any</option><option value=\"passed\"{Selected(status == "passed")}>passed</option><option value=\"failed\"{Selected(status == "failed")}>failed</option></select></label>");
        body.Add($"<label>Branch<input name=\"branch\" value=\"{branch}\" maxlength=\"255\"></label>");
        body.Add($"<label>From<input type=\"date\" name=\"since\" value=\"{DateOf(since)}\"></label><label>To<input type=\"date\" name=\"until\" value=\"{DateOf(until)}\"></label>");
        body.Add($"<button type=\"submit\">Filter</button></form>");
        var page = runs.Take(PageSize).ToList();
        RunTable(body, project, page);
        if (runs.Count > PageSize)
        {
            var last = page[^1];
            var next = Url.Of("projects", project.Id, "runs").With(("status", status), ("branch", branch), ("since", DateOf(since)), ("until", DateOf(until)),
                ("cursor", _cursors.Encode(last.Run.TimestampMs, last.Id, filters)));
            body.Add($"<p class=\"pager\"><a href=\"{next}\" rel=\"next\">Older runs</a></p>");
        }

        await PageAsync(context, session, project, "Runs", body);
    }

    /// <summary><c>GET /ui/projects/{project}/runs/{run_id}</c>: the run, failed tests first with their messages, then every test.</summary>
    public async Task RunAsync(HttpContext context)
    {
        if (await OpenProjectAsync(context) is not var (session, project, slot))
        {
            return;
        }

        using var held = slot;

        // Links escape '/' in run ids as %2F, which routing leaves escaped; run ids never contain '%'.
        var runId = ((string)context.Request.RouteValues["run_id"]!).Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
        var after = ExecutionPosition.Parse(context.Request.Query["after"]);
        var found = await HeavyReadSlots.RunAsync(async () =>
        {
            var run = await _runs.FindRunAsync(project.Key, runId);
            if (run is null)
            {
                return default;
            }

            var failed = (await _tests.ListRunExecutionsAsync(project.Key, runId, TestCaseStatus.Failed, ExecutionPosition.Start, FailedShown) ?? [])
                .Concat(await _tests.ListRunExecutionsAsync(project.Key, runId, TestCaseStatus.Error, ExecutionPosition.Start, FailedShown) ?? []).Take(FailedShown).ToList();
            var all = await _tests.ListRunExecutionsAsync(project.Key, runId, null, after, PageSize + 1) ?? [];
            return (run, failed, all);
        });
        held.Dispose(); // the data is read: a slow reader of the page holds no slot
        if (found.run is not { } run)
        {
            await NotFoundAsync(context, session);
            return;
        }

        var body = new Html();
        body.Add($"<h1>Run {run.RunId}</h1><table><tbody>");
        body.Add($"<tr><th scope=\"row\">Status</th><td class=\"{run.Status}\">{run.Status}</td></tr>");
        body.Add($"<tr><th scope=\"row\">When</th><td>{Time(run.TimestampMs)}</td></tr>");
        body.Add($"<tr><th scope=\"row\">Duration</th><td>{Duration(run.DurationMs)}</td></tr>");
        body.Add($"<tr><th scope=\"row\">Branch</th><td>{run.Branch ?? "–"}</td></tr>");
        body.Add($"<tr><th scope=\"row\">Commit</th><td>{run.CommitSha ?? "–"}</td></tr>");
        if (run.BuildUrl is { } buildUrl && Url.External(buildUrl) is { } ciLink)
        {
            body.Add($"<tr><th scope=\"row\">CI build</th><td><a href=\"{ciLink}\" rel=\"noopener noreferrer nofollow\">{buildUrl}</a></td></tr>");
        }
        if (run.Counts is { } counts)
        {
            body.Add($"<tr><th scope=\"row\">Tests</th><td>{counts.Total} in all: <span class=\"passed\">{counts.Passed} passed</span>, <span class=\"failed\">{counts.Failed} failed</span>, <span class=\"skipped\">{counts.Skipped} skipped</span></td></tr>");
        }

        body.Add($"</tbody></table>");
        if (run.Shards is { Count: > 0 } shards)
        {
            body.Add($"<h2>Shards</h2><table><thead><tr><th scope=\"col\">Shard</th><th scope=\"col\">Status</th><th scope=\"col\" class=\"num\">Tests</th><th scope=\"col\" class=\"num\">Failed</th><th scope=\"col\" class=\"num\">Duration</th><th scope=\"col\">Received</th></tr></thead><tbody>");
            foreach (var shard in shards)
            {
                body.Add($"<tr><td>{shard.Name}</td><td class=\"{shard.Status}\">{shard.Status}</td><td class=\"num\">{shard.Counts?.Total.ToString(CultureInfo.InvariantCulture) ?? "–"}</td><td class=\"num\">{shard.Counts?.Failed.ToString(CultureInfo.InvariantCulture) ?? "–"}</td><td class=\"num\">{Duration(shard.DurationMs)}</td><td>{Time(shard.ReceivedAtMs)}</td></tr>");
            }

            body.Add($"</tbody></table>");
        }

        if (found.failed.Count > 0)
        {
            var more = run.Counts is { } c2 && c2.Failed > found.failed.Count ? $" (the first {found.failed.Count} of {c2.Failed}; every test is listed below)" : "";
            body.Add($"<h2>Failed tests{more}</h2>");
            ExecutionTable(body, project, found.failed, withMessages: true);
        }

        var page = found.all.Take(PageSize).ToList();
        if (page.Count > 0)
        {
            body.Add($"<h2>All tests</h2>");
            ExecutionTable(body, project, page, withMessages: false);
            if (found.all.Count > PageSize)
            {
                body.Add($"<p class=\"pager\"><a href=\"{Url.Of("projects", project.Id, "runs", runId).With(("after", page[^1].Position.ToString()))}\" rel=\"next\">More tests</a></p>");
            }
        }

        await PageAsync(context, session, project, "Run " + run.RunId, body);
    }

    /// <summary><c>GET /ui/projects/{project}/tests?state=flaky|broken|new|fixed&amp;window=</c>.</summary>
    public async Task TestsAsync(HttpContext context)
    {
        if (await OpenProjectAsync(context) is not var (session, project, slot))
        {
            return;
        }

        using var held = slot;

        var stateText = context.Request.Query["state"].ToString();
        var state = stateText switch { "broken" => TestStates.Broken, "new" => TestStates.New, "fixed" => TestStates.Fixed, _ => TestStates.Flaky };
        var windowDays = context.Request.Query["window"].ToString() switch { "30d" => 30, "90d" => 90, _ => 7 };
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var sinceDay = DailyRollups.DayOf(now) - windowDays + 1;
        await _tests.FoldPendingAsync();
        var (tests, names, durations) = await HeavyReadSlots.RunAsync(async () =>
        {
            var selected = TestWindow.Select(TestWindow.Summarize(await _tests.WindowTotalsAsync(project.Key, "", sinceDay), sinceDay * MsPerDay, now, _rules), state)
                .Take(100).ToList();
            var ids = selected.ConvertAll(static t => t.TestId);
            return (selected, await _tests.TestsAsync(project.Key, ids), await _tests.WindowDurationsAsync(project.Key, "", sinceDay, ids));
        });
        held.Dispose(); // the data is read: a slow reader of the page holds no slot

        var body = new Html();
        var label = StateLabel(state);
        body.Add($"<h1>Tests: {label}</h1><nav class=\"tabs\" aria-label=\"Test states\">");
        foreach (var (value, text) in new[] { ("flaky", "Flaky"), ("broken", "Broken"), ("new", "New"), ("fixed", "Fixed") })
        {
            var link = Url.Of("projects", project.Id, "tests").With(("state", value), ("window", windowDays + "d"));
            if (text == label)
            {
                body.Add($"<a href=\"{link}\" aria-current=\"page\">{text}</a>");
            }
            else
            {
                body.Add($"<a href=\"{link}\">{text}</a>");
            }
        }

        body.Add($"<span class=\"muted\">window: last {windowDays} days</span></nav>");
        if (tests.Count == 0)
        {
            body.Add($"<p class=\"muted\">No {label.ToLowerInvariant()} tests in this window.</p>");
        }
        else
        {
            body.Add($"<table><thead><tr><th scope=\"col\">Test</th><th scope=\"col\" class=\"num\">Runs</th><th scope=\"col\" class=\"num\">Failures</th><th scope=\"col\" class=\"num\">Flakes</th><th scope=\"col\" class=\"num\">p95</th><th scope=\"col\">Last failure</th></tr></thead><tbody>");
            foreach (var test in tests)
            {
                var name = names.GetValueOrDefault(test.TestId);
                body.Add($"<tr><td><a href=\"{Url.Of("projects", project.Id, "tests", TestIds.Format(test.TestId))}\">{name?.Name}</a><br><span class=\"muted\">{name?.Suite}</span></td>");
                body.Add($"<td class=\"num\">{test.Executions}</td><td class=\"num\">{test.Failures}</td><td class=\"num\">{test.Flakes}</td><td class=\"num\">{Duration(durations.GetValueOrDefault(test.TestId).P95Ms)}</td><td>{(test.Totals.LastFailedMs is { } f ? Time(f) : "–")}</td></tr>");
            }

            body.Add($"</tbody></table>");
        }

        await PageAsync(context, session, project, "Tests: " + label, body);
    }

    /// <summary><c>GET /ui/projects/{project}/tests/{test_id}</c>: its status strip, duration trend, recent executions and failure groups.</summary>
    public async Task TestAsync(HttpContext context)
    {
        if (await OpenProjectAsync(context) is not var (session, project, slot))
        {
            return;
        }

        using var held = slot;

        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var today = DailyRollups.DayOf(now);
        await _tests.FoldPendingAsync();
        var found = await HeavyReadSlots.RunAsync(async () =>
        {
            if (!TestIds.TryParse((string)context.Request.RouteValues["test_id"]!, out var id)
                || (await _tests.TestsAsync(project.Key, [id])).GetValueOrDefault(id) is not { } test)
            {
                return default;
            }

            var days = await _tests.TestDaysAsync(test.Id, "", today - 29);
            var executions = (await _tests.TestExecutionsAsync(project.Key, test.Id, null, 50)).Executions;
            var groups = (await _tests.FailureOccurrencesAsync(project.Key, today - 29, test.Id)).OrderByDescending(static o => o.Occurrences).Take(10).ToList();
            var infos = await _tests.FailureGroupsAsync(project.Key, groups.ConvertAll(static g => g.GroupId));
            return (test, days, executions, groups, infos);
        });
        held.Dispose(); // the data is read: a slow reader of the page holds no slot
        if (found.test is not { } test)
        {
            await NotFoundAsync(context, session);
            return;
        }

        var summary = TestWindow.Summarize([TestWindow.Sum(test.Id, test.FirstSeenMs, test.FlakyResetMs, found.days)], (today - 29) * MsPerDay, now, _rules)[0];
        var byDay = found.days.ToDictionary(static d => d.Day);
        var dayList = Enumerable.Range(0, 30).Select(i => today - 29 + i).ToList();
        var percentiles = new DurationPercentiles();
        var p50 = new List<long?>();
        var p95 = new List<long?>();
        foreach (var day in dayList)
        {
            if (byDay.TryGetValue(day, out var row) && row.Histogram.Length > 0)
            {
                percentiles.Add(row.Histogram, row.DurationMax, row.DurationSum);
                var d = percentiles.TakeResult();
                p50.Add(d.P50Ms);
                p95.Add(d.P95Ms);
            }
            else
            {
                p50.Add(null);
                p95.Add(null);
            }
        }

        var body = new Html();
        body.Add($"<h1>{test.Name}</h1><p class=\"muted\">{test.Suite}{(test.File is null ? "" : " · " + test.File)}</p>");
        var states = string.Join(", ", new[] { TestStates.Flaky, TestStates.Broken, TestStates.New, TestStates.Fixed }.Where(s => (summary.States & s) != 0).Select(StateLabel));
        body.Add($"<div class=\"figures\"><div>{summary.Executions}<span>runs in 30 days</span></div><div>{summary.Failures}<span>failures</span></div><div>{summary.Flakes}<span>flakes</span></div><div>{(states.Length == 0 ? "–" : states)}<span>state</span></div></div>");
        body.Add($"<h2>Recent executions</h2>{Charts.StatusStrip(found.executions.Take(50).Reverse().Select(e => (e.RunId, e.Status.ToText())).ToList())}");
        body.Add($"<h2>Duration per day</h2>{Charts.Lines("test-duration", "Duration p50 and p95 per day, in milliseconds", "ms", dayList.Select(Date).Select(static d => d[5..]).ToList(), [("p50", "#1a56c4", p50), ("p95", "#b42318", p95)])}");
        if (found.groups.Count > 0)
        {
            body.Add($"<h2>Failure groups</h2><table><thead><tr><th scope=\"col\">Pattern</th><th scope=\"col\" class=\"num\">Times</th><th scope=\"col\">Last seen</th></tr></thead><tbody>");
            foreach (var group in found.groups)
            {
                body.Add($"<tr><td><pre class=\"message\">{found.infos.GetValueOrDefault(group.GroupId)?.Pattern}</pre></td><td class=\"num\">{group.Occurrences}</td><td>{Time(group.LastMs)}</td></tr>");
            }

            body.Add($"</tbody></table>");
        }

        body.Add($"<h2>Executions</h2><table><thead><tr><th scope=\"col\">Run</th><th scope=\"col\">When</th><th scope=\"col\">Branch</th><th scope=\"col\">Status</th><th scope=\"col\" class=\"num\">Duration</th></tr></thead><tbody>");
        foreach (var e in found.executions)
        {
            body.Add($"<tr><td><a href=\"{Url.Of("projects", project.Id, "runs", e.RunId)}\">{e.RunId}</a>{(e.Attempt > 1 ? $" (attempt {e.Attempt})" : "")}</td><td>{Time(e.RunTimestampMs)}</td><td>{e.Branch ?? "–"}</td><td class=\"{e.Status.ToText()}\">{e.Status.ToText()}</td><td class=\"num\">{Duration(e.DurationMs)}</td></tr>");
            if (e.FailureMessage is { } message)
            {
                body.Add($"<tr><td colspan=\"5\"><pre class=\"message\">{message}</pre></td></tr>");
            }
        }

        body.Add($"</tbody></table>");
        await PageAsync(context, session, project, test.Name, body);
    }

    /// <summary><c>GET /ui/projects/{project}/failures</c>: failure groups of the last 7 days.</summary>
    public async Task FailuresAsync(HttpContext context)
    {
        if (await OpenProjectAsync(context) is not var (session, project, slot))
        {
            return;
        }

        using var held = slot;

        var today = DailyRollups.DayOf(_clock.GetUtcNow().ToUnixTimeMilliseconds());
        await _tests.FoldPendingAsync();
        var groups = await HeavyReadSlots.RunAsync(() => TopGroupsAsync(project.Key, today - 6, 50));
        held.Dispose(); // the data is read: a slow reader of the page holds no slot
        var body = new Html();
        body.Add($"<h1>Failure groups (7 days)</h1>");
        GroupTable(body, project, groups);
        await PageAsync(context, session, project, "Failure groups", body);
    }

    private async ValueTask<List<GroupRow>> TopGroupsAsync(long projectKey, long sinceDay, int limit)
    {
        var top = FailureGroupTotal.Top(await _tests.FailureOccurrencesAsync(projectKey, sinceDay), limit);
        var infos = await _tests.FailureGroupsAsync(projectKey, top.ConvertAll(static g => g.GroupId));
        return top.ConvertAll(g => new GroupRow(infos.GetValueOrDefault(g.GroupId)?.Example ?? "", g.Occurrences, g.Tests.Count, g.LastMs));
    }

    private sealed record GroupRow(string Example, long Occurrences, int Tests, long LastMs);

    private static void GroupTable(Html body, ProjectRecord project, List<GroupRow> groups)
    {
        _ = project;
        if (groups.Count == 0)
        {
            body.Add($"<p class=\"muted\">No failures in this window.</p>");
            return;
        }

        body.Add($"<table><thead><tr><th scope=\"col\">Failure</th><th scope=\"col\" class=\"num\">Times</th><th scope=\"col\" class=\"num\">Tests</th><th scope=\"col\">Last seen</th></tr></thead><tbody>");
        foreach (var group in groups)
        {
            body.Add($"<tr><td><pre class=\"message\">{Shown(group.Example)}</pre></td><td class=\"num\">{group.Occurrences}</td><td class=\"num\">{group.Tests}</td><td>{Time(group.LastMs)}</td></tr>");
        }

        body.Add($"</tbody></table>");
    }

    private static void RunTable(Html body, ProjectRecord project, IReadOnlyList<ListedRun> runs)
    {
        if (runs.Count == 0)
        {
            body.Add($"<p class=\"muted\">No runs.</p>");
            return;
        }

        body.Add($"<table><thead><tr><th scope=\"col\">Run</th><th scope=\"col\">When</th><th scope=\"col\">Status</th><th scope=\"col\">Branch</th><th scope=\"col\">Commit</th><th scope=\"col\" class=\"num\">Tests</th><th scope=\"col\" class=\"num\">Duration</th></tr></thead><tbody>");
        foreach (var (_, run) in runs)
        {
            body.Add($"<tr><td><a href=\"{Url.Of("projects", project.Id, "runs", run.RunId)}\">{run.RunId}</a></td><td>{Time(run.TimestampMs)}</td><td class=\"{run.Status}\">{run.Status}</td><td>{run.Branch ?? "–"}</td><td>{Short(run.CommitSha)}</td><td class=\"num\">{(run.Counts is { } c ? c.Total.ToString(CultureInfo.InvariantCulture) : "–")}</td><td class=\"num\">{Duration(run.DurationMs)}</td></tr>");
        }

        body.Add($"</tbody></table>");
    }

    private static void ExecutionTable(Html body, ProjectRecord project, IReadOnlyList<RunExecution> executions, bool withMessages)
    {
        body.Add($"<table><thead><tr><th scope=\"col\">Test</th><th scope=\"col\">Status</th><th scope=\"col\" class=\"num\">Attempt</th><th scope=\"col\" class=\"num\">Duration</th></tr></thead><tbody>");
        foreach (var execution in executions)
        {
            var test = execution.Case;
            body.Add($"<tr><td><a href=\"{Url.Of("projects", project.Id, "tests", TestIds.Format(execution.TestId))}\">{test.Name}</a><br><span class=\"muted\">{test.Suite}{(execution.Shard is { } shard ? " · shard " + shard : "")}</span></td><td class=\"{test.Status.ToText()}\">{test.Status.ToText()}</td><td class=\"num\">{test.Attempt}</td><td class=\"num\">{Duration(test.DurationMs)}</td></tr>");
            if (withMessages && test.FailureMessage is { } message)
            {
                body.Add($"<tr><td colspan=\"4\"><pre class=\"message\">{Shown(message)}</pre></td></tr>");
            }
        }

        body.Add($"</tbody></table>");
    }

    /// <summary>
    /// The session, the project named by the route and a history-read slot (the same fair slots and per-token read
    /// budget as the API's reads: a page is no cheaper a way to scan history), or null after the sign-in redirect,
    /// the 404, the 429 or the 503 page.
    /// </summary>
    private async Task<(Session Session, ProjectRecord Project, IDisposable Slot)?> OpenProjectAsync(HttpContext context)
    {
        if (await OpenSessionAsync(context) is not { } session)
        {
            return null;
        }

        if (await _tenants.FindProjectAsync((string)context.Request.RouteValues["project"]!) is not { } project || !session.Principal.Owns(project))
        {
            await NotFoundAsync(context, session);
            return null;
        }

        if (await _reads.TryEnterAsync(session.Principal.OrgKey ?? project.Key, context.RequestAborted) is not { } slot)
        {
            context.Response.Headers.RetryAfter = "2";
            await MessagePageAsync(context, session, "Busy", "History reads are busy right now; try again in a moment.", StatusCodes.Status503ServiceUnavailable);
            return null;
        }

        return (session, project, slot);
    }

    /// <summary>The live session within its read budget, or null after the sign-in redirect or the 429 page.</summary>
    private async Task<Session?> OpenSessionAsync(HttpContext context)
    {
        if ((await _sessions.FindAsync(context)) is not { } session)
        {
            Redirect(context, "/ui");
            return null;
        }

        context.Features.Set(session.Principal); // the access log names the token and project, as for the API
        session.Principal.Touch(_clock.GetUtcNow().ToUnixTimeMilliseconds());
        if (_limiter.TryAcquire(context, RateLimitPolicy.Read, session.Principal) is { } retryAfter)
        {
            context.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
            await MessagePageAsync(context, session, "Slow down", "This token's read budget is spent for now; try again shortly.", StatusCodes.Status429TooManyRequests);
            return null;
        }

        return session;
    }

    private Task MessagePageAsync(HttpContext context, Session? session, string title, string message, int status)
    {
        var body = new Html();
        body.Add($"<h1>{title}</h1><p>{message}</p>");
        return PageAsync(context, session, null, title, body, status);
    }

    /// <summary>The posted form, or null when the body is not one (a bad request, never a 500).</summary>
    private static async Task<IFormCollection?> ReadFormAsync(HttpContext context)
    {
        if (!context.Request.HasFormContentType)
        {
            return null;
        }

        try
        {
            return await context.Request.ReadFormAsync(context.RequestAborted);
        }
        catch (Exception e) when (e is InvalidDataException or BadHttpRequestException or IOException or OperationCanceledException)
        {
            return null;
        }
    }

    private Task NotFoundAsync(HttpContext context, Session session)
    {
        var body = new Html();
        body.Add($"<h1>Not found</h1><p>There is nothing here that this session may see. <a href=\"/ui\">Back to your projects</a>.</p>");
        return PageAsync(context, session, null, "Not found", body, StatusCodes.Status404NotFound);
    }

    private Task SignInPageAsync(HttpContext context, string? error, int status)
    {
        var antiForgery = DashboardSessions.NewSecret();
        context.Response.Cookies.Append(LoginCookie, antiForgery, Cookie(context, TimeSpan.FromHours(1)));
        var body = new Html();
        body.Add($"<div class=\"signin\"><h1>Sign in to FastIngest</h1>");
        if (error is not null)
        {
            body.Add($"<p class=\"error-box\" role=\"alert\">{error}</p>");
        }

        body.Add($"<form method=\"post\" action=\"/ui/sign-in\"><input type=\"hidden\" name=\"af\" value=\"{antiForgery}\">");
        body.Add($"<p><label for=\"token\">API token (admin, org, read or ingest)</label><br><input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required maxlength=\"200\"></p>");
        body.Add($"<p><button type=\"submit\">Sign in</button></p></form>");
        body.Add($"<p class=\"muted\">The token is checked once and never stored: the browser keeps only a session cookie, which ends at sign-out, after {(int)DashboardSessions.Lifetime.TotalHours} hours, or when the token is revoked.</p></div>");
        return PageAsync(context, null, null, "Sign in", body, status);
    }

    private async Task PageAsync(HttpContext context, Session? session, ProjectRecord? project, string title, Html body, int status = StatusCodes.Status200OK)
    {
        var page = new Html();
        page.Add($"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        page.Add($"<title>{title} · FastIngest</title><link rel=\"stylesheet\" href=\"{Url.Local(_assets.CssPath)}\"></head><body>");
        page.Add($"<header><a class=\"brand\" href=\"/ui\">FastIngest</a>");
        if (project is not null)
        {
            page.Add($"<nav aria-label=\"Project\"><a href=\"{Url.Of("projects", project.Id)}\">{project.Name}</a><a href=\"{Url.Of("projects", project.Id, "runs")}\">Runs</a><a href=\"{Url.Of("projects", project.Id, "tests")}\">Tests</a><a href=\"{Url.Of("projects", project.Id, "failures")}\">Failures</a></nav>");
        }

        if (session is not null)
        {
            page.Add($"<form method=\"post\" action=\"/ui/sign-out\"><input type=\"hidden\" name=\"af\" value=\"{session.AntiForgery}\"><button type=\"submit\">Sign out</button></form>");
        }

        page.Add($"</header><main>{body}</main><footer><a href=\"/ui/api\">API reference</a></footer></body></html>");
        SecurityHeaders(context);
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/html; charset=utf-8";
        await context.Response.WriteAsync(page.ToString(), Encoding.UTF8, context.RequestAborted);
    }

    private static void SecurityHeaders(HttpContext context)
    {
        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = s_securityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.XFrameOptions = "DENY";
        headers.CacheControl = "no-store";
    }

    private static void Redirect(HttpContext context, string path)
    {
        SecurityHeaders(context);
        context.Response.StatusCode = StatusCodes.Status303SeeOther;
        context.Response.Headers.Location = path;
    }

    private static CookieOptions Cookie(HttpContext context, TimeSpan? lifetime) => new()
    {
        HttpOnly = true,
        SameSite = SameSiteMode.Strict,
        Secure = context.Request.IsHttps,
        Path = "/ui",
        MaxAge = lifetime,
        IsEssential = true,
    };

    private static string StateLabel(TestStates state) => state switch
    {
        TestStates.Flaky => "Flaky",
        TestStates.Broken => "Broken",
        TestStates.New => "New",
        _ => "Fixed",
    };

    private static string Selected(bool selected) => selected ? " selected" : "";

    /// <summary>A message as a listing shows it: its first <see cref="MessageShown"/> characters.</summary>
    private static string Shown(string message) => message.Length > MessageShown ? message[..MessageShown] + " …" : message;

    private static string Date(long day) => DailyRollups.DateOf(day);

    private static string Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + " UTC";

    private static string Duration(long ms) => ms < 1000 ? ms.ToString(CultureInfo.InvariantCulture) + " ms"
        : ms < 120_000 ? (ms / 1000.0).ToString("0.0", CultureInfo.InvariantCulture) + " s"
        : (ms / 60_000.0).ToString("0.0", CultureInfo.InvariantCulture) + " min";

    private static string Short(string? sha) => sha is null ? "–" : sha.Length > 10 ? sha[..10] : sha;

    private static long? ParseDate(Microsoft.Extensions.Primitives.StringValues text) =>
        DateOnly.TryParseExact(text.ToString(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)
            ? new DateTimeOffset(date.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).ToUnixTimeMilliseconds()
            : null;

    private static string? DateOf(long? ms) => ms is { } value ? DateTimeOffset.FromUnixTimeMilliseconds(value).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) : null;
}
