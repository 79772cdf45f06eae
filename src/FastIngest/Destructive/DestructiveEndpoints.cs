using System.Text.Json;
using FastIngest.Auth;
using FastIngest.Configuration;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Storage;

namespace FastIngest.Destructive;

/// <summary>
/// Every destructive action takes two calls. The first answers 202 with a confirm token and what would happen
/// (action, target, row counts, expiry). The second repeats the request with <c>X-Confirm-Token</c>, which is
/// spent atomically, and performs it. Large deletions run through <see cref="RunPurger"/> in paced batches, each
/// its own short transaction, so ingest keeps committing in between.
/// </summary>
public sealed class DestructiveEndpoints
{
    private readonly RequestAuthentication _auth;
    private readonly ITenantStore _tenants;
    private readonly IDataRemovalStore _removal;
    private readonly ConfirmTokens _confirm;
    private readonly Management.ManagedObjectAccess _projects;
    private readonly RunPurger _purger;
    private readonly DestructiveJobs _jobs;
    private readonly Authenticator _authenticator;
    private readonly ServerOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;

    public DestructiveEndpoints(RequestAuthentication auth, ITenantStore tenants, IDataRemovalStore removal, ConfirmTokens confirm,
        Authenticator authenticator, Management.ManagedObjectAccess projects, RunPurger purger, DestructiveJobs jobs, ServerOptions options,
        TimeProvider clock, ILoggerFactory loggers)
    {
        _purger = purger;
        _jobs = jobs;
        _projects = projects;
        _auth = auth;
        _tenants = tenants;
        _removal = removal;
        _confirm = confirm;
        _authenticator = authenticator;
        _options = options;
        _clock = clock;
        _logger = loggers.CreateLogger("FastIngest.Security");
    }

    /// <summary><c>DELETE /v1/projects/{id}</c>: the project, its runs and its tokens.</summary>
    public async Task DeleteProjectAsync(HttpContext context)
    {
        if (await _projects.AuthorizeAsync(context, PolicyOf(context), "Destructive actions") is not var (principal, project))
        {
            return;
        }

        var runs = await _removal.CountRunsAsync(project.Key, null);
        if (!await ConfirmAsync(context, principal, "delete_project", $"project:{project.Id}", $"delete project {project.Id} and its {runs} runs",
            json => json.WriteNumber("runs"u8, runs)))
        {
            return;
        }

        IReadOnlyList<string>? revoked;
        try
        {
            revoked = await _removal.BeginProjectDeletionAsync(project.Key, Now());
        }
        finally
        {
            // Also when the write failed: it may have committed without its flush, and a spurious retirement
            // only makes the project's cached tokens be read again.
            _authenticator.RetireProject(project.Key);
        }

        if (revoked is null)
        {
            await Problems.NotFound(context, $"Project '{project.Id}'"); // another request deleted it meanwhile
            return;
        }

        // From here the project is gone for every caller; its data goes in a job, batch by batch.
        var job = _jobs.Start("delete_project", project.Id, principal, project.OrgKey, revoked.Count,
            (job, stopping) => RemoveProjectDataAsync(project.Key, job, stopping));
        await WriteStartedAsync(context, job);
    }

    /// <summary><c>DELETE /v1/orgs/{id}</c>: the org, all its projects, runs and tokens.</summary>
    public async Task DeleteOrgAsync(HttpContext context)
    {
        if (await _projects.AuthorizeOrgAsync(context, PolicyOf(context), "Deleting an organization") is not var (principal, org))
        {
            return;
        }

        var projects = await _removal.ProjectKeysOfAsync(org.Key);
        long runs = 0;
        foreach (var projectKey in projects)
        {
            runs += await _removal.CountRunsAsync(projectKey, null);
        }

        if (!await ConfirmAsync(context, principal, "delete_org", $"org:{org.Id}", $"delete org {org.Id}: {projects.Count} projects, {runs} runs",
            json =>
            {
                json.WriteNumber("projects"u8, projects.Count);
                json.WriteNumber("runs"u8, runs);
            }))
        {
            return;
        }

        // Final at once: the org, its projects and every token of it are marked in one transaction, then the
        // cached principals go; only then is the data removed, in paced batches.
        (IReadOnlyList<long> ProjectKeys, IReadOnlyList<string> TokenIds)? begun;
        try
        {
            begun = await _removal.BeginOrgDeletionAsync(org.Key, Now());
        }
        finally
        {
            _authenticator.RetireOrg(org.Key); // also on failure, as for a project
        }

        if (begun is not var (projectKeys, revokedTokens))
        {
            await Problems.NotFound(context, $"Organization '{org.Id}'");
            return;
        }

        var job = _jobs.Start("delete_org", org.Id, principal, org.Key, revokedTokens.Count, async (job, stopping) =>
        {
            foreach (var project in projectKeys)
            {
                await RemoveProjectDataAsync(project, job, stopping);
            }

            await _removal.DeleteOrgAsync(org.Key);
        });
        await WriteStartedAsync(context, job);
    }

    /// <summary><c>POST /v1/projects/{id}/tokens/revoke-all</c>.</summary>
    public async Task RevokeAllTokensAsync(HttpContext context)
    {
        if (await _projects.AuthorizeAsync(context, PolicyOf(context), "Destructive actions") is not var (principal, project))
        {
            return;
        }

        var active = (await _tenants.ListProjectTokensAsync(project.Key)).Count(t => t.RevokedAtMs is null);
        if (!await ConfirmAsync(context, principal, "revoke_all_tokens", $"project:{project.Id}", $"revoke {active} tokens of project {project.Id}",
            json => json.WriteNumber("tokens"u8, active)))
        {
            return;
        }

        IReadOnlyList<string> revoked;
        try
        {
            revoked = await _removal.RevokeProjectTokensAsync(project.Key, Now());
        }
        catch
        {
            _authenticator.RetireProject(project.Key); // which ones is unknown: every cached token of it is read again
            throw;
        }

        _authenticator.RetireTokens(revoked);

        await WriteDoneAsync(context, "revoke_all_tokens", project.Id, 0, revoked.Count);
    }

    /// <summary><c>POST /v1/projects/{id}/purge {before}</c>: runs whose timestamp is before the given instant.</summary>
    public async Task PurgeAsync(HttpContext context)
    {
        if (await _projects.AuthorizeAsync(context, PolicyOf(context), "Destructive actions") is not var (principal, project))
        {
            return;
        }

        using var body = await JsonBody.ReadAsync(context, "before");
        if (body is null)
        {
            return;
        }

        var beforeText = body.Text("before", required: true, 40);
        long before = 0;
        if (beforeText is not null)
        {
            var candidate = beforeText.Length == 10 ? beforeText + "T00:00:00Z" : beforeText;
            if (Ingest.Rfc3339.TryParse(System.Text.Encoding.ASCII.GetBytes(candidate), out var instant))
            {
                before = instant.ToUnixTimeMilliseconds();
            }
            else
            {
                body.AddError("before", "must be an RFC 3339 date-time or a date");
            }
        }

        if (body.HasErrors)
        {
            await Problems.Validation(context, body.Errors);
            return;
        }

        var runs = await _removal.CountRunsAsync(project.Key, before);
        // The cut-off is part of the target: a token issued for one date cannot purge up to another.
        if (!await ConfirmAsync(context, principal, "purge_runs", $"project:{project.Id}:before:{before}", $"purge {runs} runs of {project.Id} before {beforeText}",
            json => json.WriteNumber("runs"u8, runs)))
        {
            return;
        }

        var job = _jobs.Start("purge_runs", project.Id, principal, project.OrgKey, 0,
            (job, stopping) => _purger.PurgeAsync(project.Key, before, job.AddDeletedRuns, stopping));
        await WriteStartedAsync(context, job);
    }

    /// <summary>
    /// <c>PATCH /v1/projects/{id} {retention_days}</c>: keep only that many days of runs (null keeps everything).
    /// Two-step like the other destructive actions, because the retention job will delete what falls outside.
    /// </summary>
    public async Task SetRetentionAsync(HttpContext context)
    {
        if (await _projects.AuthorizeAsync(context, PolicyOf(context), "Changing retention") is not var (principal, project))
        {
            return;
        }

        using var body = await JsonBody.ReadAsync(context, "retention_days");
        if (body is null)
        {
            return;
        }

        var days = (int?)body.WholeNumber("retention_days", 1, 3650);
        if (body.HasErrors)
        {
            await Problems.Validation(context, body.Errors);
            return;
        }

        var affected = days is { } d ? await _removal.CountRunsAsync(project.Key, Now() - (d * 24L * 60 * 60 * 1000)) : 0;
        var target = $"project:{project.Id}:retention:{days?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}";
        if (!await ConfirmAsync(context, principal, "set_retention", target,
            days is null ? $"keep all runs of {project.Id}" : $"keep {days} days of runs of {project.Id}; {affected} older runs will be deleted",
            json => json.WriteNumber("runs_outside_retention"u8, affected)))
        {
            return;
        }

        await _tenants.SetRetentionAsync(project.Key, days);
        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (project.Id, days), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("id"u8, s.Item1);
            if (s.days is { } value)
            {
                json.WriteNumber("retention_days"u8, value);
            }
            else
            {
                json.WriteNull("retention_days"u8);
            }

            json.WriteEndObject();
        });
    }

    /// <summary><c>POST /v1/admin/backup</c>: a consistent online snapshot under <c>&lt;data&gt;/backups/</c>.</summary>
    public async Task BackupAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Management) is not { } principal)
        {
            return;
        }

        if (principal.Scope != TokenScope.Admin)
        {
            await Problems.Forbidden(context, "Backups need the admin token.");
            return;
        }

        if (_removal.BackupUnavailableReason is { } reason)
        {
            await Problems.Conflict(context, "backup-not-available", reason);
            return;
        }

        var name = $"fastingest-{_clock.GetUtcNow():yyyyMMdd-HHmmss-fff}.db";
        var path = Path.Combine(_options.DataDirectory, "backups", name);
        var requestId = context.TraceIdentifier;
        var job = _jobs.Start("backup", name, principal, orgKey: null, 0, async (job, stopping) =>
        {
            var bytes = await _removal.BackupAsync(path, stopping);
            job.Backup = (path, bytes);
            Log.BackupWritten(_logger, requestId, path, bytes, principal.TokenId);
        });
        await WriteStartedAsync(context, job);
    }

    /// <summary><c>GET /v1/jobs/{id}</c>: a job this credential may see (its own, its org's, or any for an admin); else 404.</summary>
    public async Task GetJobAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Read) is not { } principal)
        {
            return;
        }

        var id = context.Request.RouteValues["id"] as string ?? "";
        if (_jobs.Find(id, principal) is not { } job)
        {
            await Problems.NotFound(context, $"Job '{id}'");
            return;
        }

        await WriteJobAsync(context, StatusCodes.Status200OK, job);
    }

    /// <summary>Removes a project whose deletion has begun: its runs in paced batches, then the row.</summary>
    private async Task RemoveProjectDataAsync(long projectKey, DestructiveJob job, CancellationToken stopping)
    {
        await _purger.DeleteAllAsync(projectKey, job.AddDeletedRuns, stopping);
        await _removal.DeleteProjectAsync(projectKey, stopping);
    }

    /// <summary>
    /// Without a confirm token: issues one and answers 202 describing the effect (returns false). With one:
    /// spends it, or answers the precise reason it cannot be spent (returns false); true means go ahead.
    /// </summary>
    private async Task<bool> ConfirmAsync(HttpContext context, Principal principal, string action, string target, string summary,
        Action<Utf8JsonWriter> writeEffect)
    {
        var presented = context.Request.Headers[ConfirmTokens.HeaderName];
        if (presented.Count == 0)
        {
            var (token, expires) = await _confirm.IssueAsync(action, target, principal.TokenId, summary);
            Log.ConfirmIssued(_logger, context.TraceIdentifier, action, target, principal.TokenId);
            await JsonResponse.WriteAsync(context, StatusCodes.Status202Accepted, (token, expires, action, target, summary, writeEffect), static (json, s) =>
            {
                json.WriteStartObject();
                json.WriteString("confirm_token"u8, s.token);
                json.WriteString("action"u8, s.action);
                json.WriteString("target"u8, s.target);
                json.WriteString("summary"u8, s.summary);
                json.WriteStartObject("effect"u8);
                s.writeEffect(json);
                json.WriteEndObject();
                json.WriteTimestamp("expires_at"u8, s.expires);
                json.WriteString("confirm_with"u8, $"repeat this request with the header {ConfirmTokens.HeaderName}");
                json.WriteEndObject();
            });
            return false;
        }

        if (await RequestAuthentication.RefuseIfRetiredAsync(context, principal))
        {
            return false;
        }

        var outcome = presented.Count == 1
            ? await _confirm.ConsumeAsync(presented[0] ?? "", action, target, principal.TokenId)
            : ConfirmOutcome.Unknown;
        if (outcome == ConfirmOutcome.Consumed)
        {
            Log.ConfirmConsumed(_logger, context.TraceIdentifier, action, target, principal.TokenId);
            return true;
        }

        var reason = outcome switch
        {
            ConfirmOutcome.AlreadyUsed => "already_used",
            ConfirmOutcome.Expired => "expired",
            ConfirmOutcome.Mismatch => "mismatch",
            _ => "unknown",
        };
        Log.ConfirmRejected(_logger, context.TraceIdentifier, action, target, principal.TokenId, reason);
        await (outcome switch
        {
            ConfirmOutcome.AlreadyUsed => Problems.WriteAsync(context, StatusCodes.Status409Conflict, "confirm-token-used",
                "The confirm token was already used.", "Nothing was done. Start again without X-Confirm-Token to get a new one."),
            ConfirmOutcome.Expired => Problems.WriteAsync(context, StatusCodes.Status410Gone, "confirm-token-expired",
                "The confirm token has expired.", "Nothing was done. Confirm tokens are valid for 5 minutes."),
            ConfirmOutcome.Mismatch => Problems.WriteAsync(context, StatusCodes.Status403Forbidden, "confirm-token-mismatch",
                "The confirm token was issued for another action, target or credential.", "Nothing was done."),
            _ => Problems.WriteAsync(context, StatusCodes.Status400BadRequest, "confirm-token-unknown",
                "The confirm token is not known.", "Nothing was done."),
        });
        return false;
    }

    private static RateLimitPolicy PolicyOf(HttpContext context) =>
        context.Request.Headers.ContainsKey(ConfirmTokens.HeaderName) ? RateLimitPolicy.Confirm : RateLimitPolicy.Management;

    private static Task WriteDoneAsync(HttpContext context, string action, string target, long deletedRuns, long revokedTokens) =>
        JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (action, target, deletedRuns, revokedTokens), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("action"u8, s.action);
            json.WriteString("target"u8, s.target);
            json.WriteNumber("deleted_runs"u8, s.deletedRuns);
            json.WriteNumber("revoked_tokens"u8, s.revokedTokens);
            json.WriteEndObject();
        });

    /// <summary>202 with the job, or 503 when the server is stopping and started none (a deletion already begun is finished after the restart).</summary>
    private static Task WriteStartedAsync(HttpContext context, DestructiveJob? job) =>
        job is null
            ? Problems.Unavailable(context, "stopping",
                "The server is stopping and starts no job. A deletion confirmed here has begun and is finished after the restart; start a purge or a backup again then.", 5)
            : WriteJobAsync(context, StatusCodes.Status202Accepted, job);

    /// <summary>A job as the API shows it; with 202 (just started) it also says where to poll.</summary>
    private static Task WriteJobAsync(HttpContext context, int status, DestructiveJob job)
    {
        var url = "/v1/jobs/" + job.Id;
        if (status == StatusCodes.Status202Accepted)
        {
            context.Response.Headers.Location = url;
        }

        return JsonResponse.WriteAsync(context, status, (job, url), static (json, s) =>
        {
            var job = s.job;
            var jobStatus = job.Status; // read first: once it says finished, the end time and reason are set
            json.WriteStartObject();
            json.WriteString("job_id"u8, job.Id);
            json.WriteString("url"u8, s.url);
            json.WriteString("action"u8, job.Action);
            json.WriteString("target"u8, job.Target);
            json.WriteString("status"u8, jobStatus switch
            {
                JobStatus.Running => "running",
                JobStatus.Succeeded => "succeeded",
                JobStatus.Interrupted => "interrupted",
                _ => "failed",
            });
            json.WriteTimestamp("started_at"u8, job.StartedAtMs);
            json.WriteTimestamp("finished_at"u8, jobStatus == JobStatus.Running ? null : job.FinishedAtMs);
            json.WriteNumber("deleted_runs"u8, job.DeletedRuns);
            json.WriteNumber("revoked_tokens"u8, job.RevokedTokens);
            if (jobStatus != JobStatus.Running && job.Backup is var (path, bytes)) // written before the status: complete once it ended
            {
                json.WriteString("path"u8, path);
                json.WriteNumber("bytes"u8, bytes);
            }

            if (jobStatus != JobStatus.Running && job.Error is { } error)
            {
                json.WriteString("error"u8, error);
            }

            json.WriteEndObject();
        });
    }

    private long Now() => _clock.GetUtcNow().ToUnixTimeMilliseconds();
}
