using FastIngest.Auth;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Storage;

namespace FastIngest.Ingest;

/// <summary>
/// <c>GET /v1/runs/{run_id}</c>: a project token reads its own project; admin and org tokens name the project
/// with <c>?project_id=</c>. Someone else's run is 404, exactly like a missing one.
/// </summary>
public sealed class RunEndpoints
{
    private readonly RequestAuthentication _auth;
    private readonly ITenantStore _tenants;
    private readonly IRunQueries _runs;

    public RunEndpoints(RequestAuthentication auth, ITenantStore tenants, IRunQueries runs)
    {
        _auth = auth;
        _tenants = tenants;
        _runs = runs;
    }

    public async Task GetAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Read) is not { } principal)
        {
            return;
        }

        var runId = (string)context.Request.RouteValues["run_id"]!;
        long projectKey;
        string projectId;
        if (principal.ProjectKey is { } own)
        {
            projectKey = own;
            projectId = principal.ProjectId!;
        }
        else
        {
            var requested = context.Request.Query["project_id"];
            if (requested.Count != 1 || string.IsNullOrEmpty(requested[0]))
            {
                await Problems.Validation(context, [new FieldError("project_id", "is required for admin and org tokens")]);
                return;
            }

            var project = _tenants.FindProject(requested[0]!);
            if (project is null || !principal.Owns(project))
            {
                await Problems.NotFound(context, $"Project '{requested[0]}'");
                return;
            }

            projectKey = project.Key;
            projectId = project.Id;
        }

        var run = _runs.FindRun(projectKey, runId);
        if (run is null)
        {
            await Problems.NotFound(context, $"Run '{runId}'");
            return;
        }

        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (run, projectId), static (json, s) =>
        {
            var r = s.run;
            json.WriteStartObject();
            json.WriteString("run_id"u8, r.RunId);
            json.WriteString("project_id"u8, s.projectId);
            json.WriteString("status"u8, r.Status);
            json.WriteNumber("duration_ms"u8, r.DurationMs);
            json.WriteTimestamp("timestamp"u8, r.TimestampMs);
            json.WriteString("branch"u8, r.Branch);
            json.WriteString("commit_sha"u8, r.CommitSha);
            if (r.Counts is { } c)
            {
                json.WriteStartObject("counts"u8);
                json.WriteNumber("total"u8, c.Total);
                json.WriteNumber("passed"u8, c.Passed);
                json.WriteNumber("failed"u8, c.Failed);
                json.WriteNumber("skipped"u8, c.Skipped);
                json.WriteEndObject();
            }
            else
            {
                json.WriteNull("counts"u8);
            }

            json.WriteTimestamp("received_at"u8, r.ReceivedAtMs);
            json.WriteEndObject();
        });
    }
}
