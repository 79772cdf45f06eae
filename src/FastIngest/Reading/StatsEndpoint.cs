using System.Globalization;
using FastIngest.Auth;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Storage;

namespace FastIngest.Reading;

/// <summary>
/// <c>GET /v1/stats?window=7d</c> (or <c>since</c>/<c>until</c>, and <c>branch</c>): totals, pass rate, duration
/// percentiles and a per-day series, computed from the daily roll-ups (one row per day), so 90 days of a
/// million runs read 90 rows. Windows are whole UTC days by run timestamp: <c>window=7d</c> is today and the six
/// days before; <c>since</c>/<c>until</c> select the days they fall on (<c>until</c> exclusive).
/// Percentiles are nearest-rank over a 5% log-bucketed histogram (<see cref="DurationHistogram"/>): the reported
/// value is the upper edge of the bucket holding the true nearest-rank value, at most 5% above it and never
/// above the true maximum, which is exact.
/// </summary>
public sealed class StatsEndpoint
{
    private const long MsPerDay = 24L * 60 * 60 * 1000;
    private readonly RequestAuthentication _auth;
    private readonly ProjectResolver _projects;
    private readonly IRunQueries _runs;
    private readonly TimeProvider _clock;

    public StatsEndpoint(RequestAuthentication auth, ProjectResolver projects, IRunQueries runs, TimeProvider clock)
    {
        _auth = auth;
        _projects = projects;
        _runs = runs;
        _clock = clock;
    }

    public async Task GetAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Read) is not { } principal)
        {
            return;
        }

        var query = new QueryParameters(context.Request.Query, "project_id", "window", "since", "until", "branch");
        var window = query.Text("window", 5);
        var since = query.Instant("since");
        var until = query.Instant("until");
        var branch = query.Text("branch", 255) ?? "";
        var today = Math.DivRem(_clock.GetUtcNow().ToUnixTimeMilliseconds(), MsPerDay).Quotient;
        long fromDay, toDay;
        if (window is not null && (since is not null || until is not null))
        {
            query.Add("window", "use either window or since/until, not both");
            fromDay = toDay = today;
        }
        else if (since is not null || until is not null)
        {
            fromDay = since is { } s ? FloorDay(s) : today - 6;
            toDay = until is { } u ? FloorDay(u - 1) : today;
        }
        else
        {
            var length = 7;
            if (window is not null && (!window.EndsWith('d') || !int.TryParse(window.AsSpan(0, window.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out length) || length is < 1 or > 3660))
            {
                query.Add("window", "must be a number of days from 1d to 3660d, e.g. 7d or 90d");
            }

            fromDay = today - length + 1;
            toDay = today;
        }

        if (!query.HasErrors && (toDay < fromDay || toDay - fromDay > 3660))
        {
            query.Add("until", "must be after since, and the range at most 3660 days");
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

        var days = await _runs.DailyStatsAsync(projectKey, branch, fromDay, toDay);
        var merged = new byte[DurationHistogram.BlobLength];
        long total = 0, passed = 0, failed = 0, max = 0;
        foreach (var day in days)
        {
            total += day.Total;
            passed += day.Passed;
            failed += day.Failed;
            max = Math.Max(max, day.DurationMaxMs);
            DurationHistogram.Merge(merged, day.Histogram);
        }

        var state = (projectId, branch, fromDay, toDay, days, merged, total, passed, failed, max);
        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, state, static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("project_id"u8, s.projectId);
            json.WriteString("branch"u8, s.branch.Length == 0 ? null : s.branch);
            json.WriteString("from"u8, Date(s.fromDay));
            json.WriteString("to"u8, Date(s.toDay));
            json.WriteNumber("total"u8, s.total);
            json.WriteNumber("passed"u8, s.passed);
            json.WriteNumber("failed"u8, s.failed);
            WriteRate(json, s.passed, s.total);
            json.WriteStartObject("duration_ms"u8);
            json.WriteNumber("p50"u8, DurationHistogram.Percentile(s.merged, s.total, 50, s.max));
            json.WriteNumber("p95"u8, DurationHistogram.Percentile(s.merged, s.total, 95, s.max));
            json.WriteNumber("p99"u8, DurationHistogram.Percentile(s.merged, s.total, 99, s.max));
            json.WriteNumber("max"u8, s.max);
            json.WriteEndObject();
            json.WriteStartArray("daily"u8);
            var next = 0;
            for (var day = s.fromDay; day <= s.toDay; day++)
            {
                // Every day of the range appears, with zeros when nothing ran: charts need no gap filling.
                var stats = next < s.days.Count && s.days[next].Day == day ? s.days[next++] : null;
                json.WriteStartObject();
                json.WriteString("date"u8, Date(day));
                json.WriteNumber("count"u8, stats?.Total ?? 0);
                WriteRate(json, stats?.Passed ?? 0, stats?.Total ?? 0);
                json.WriteNumber("p95_ms"u8, stats is null ? 0 : DurationHistogram.Percentile(stats.Histogram, stats.Total, 95, stats.DurationMaxMs));
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    private static void WriteRate(System.Text.Json.Utf8JsonWriter json, long passed, long total)
    {
        if (total == 0)
        {
            json.WriteNull("pass_rate"u8);
        }
        else
        {
            json.WriteNumber("pass_rate"u8, Math.Round((double)passed / total, 4));
        }
    }

    private static long FloorDay(long ms) => Math.DivRem(ms, MsPerDay) is var (q, r) && r < 0 ? q - 1 : q;

    private static string Date(long day) =>
        DateTimeOffset.FromUnixTimeMilliseconds(day * MsPerDay).UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}
