using FastIngest.Auth;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Storage;

namespace FastIngest.Management;

/// <summary><c>POST /v1/projects</c>: admin, or an org token inside its own org.</summary>
public sealed class ProjectEndpoints
{
    public const int MaxNameLength = 200;
    private readonly RequestAuthentication _auth;
    private readonly ITenantStore _store;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;

    public ProjectEndpoints(RequestAuthentication auth, ITenantStore store, TimeProvider clock, ILoggerFactory loggers)
    {
        _auth = auth;
        _store = store;
        _clock = clock;
        _logger = loggers.CreateLogger("FastIngest.Management");
    }

    public async Task CreateAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Management) is not { } principal)
        {
            return;
        }

        if (!principal.CanManage())
        {
            await Problems.Forbidden(context, "Creating projects needs an admin or org token.");
            return;
        }

        using var body = await JsonBody.ReadAsync(context, "org_id", "name");
        if (body is null)
        {
            return;
        }

        var orgId = body.Text("org_id", required: true, 64);
        var name = body.Text("name", required: true, MaxNameLength);
        if (body.HasErrors)
        {
            await Problems.Validation(context, body.Errors);
            return;
        }

        var org = await _store.FindOrgAsync(orgId!);
        if (org is null || !principal.Owns(org))
        {
            await Problems.NotFound(context, $"Organization '{orgId}'");
            return;
        }

        if (await RequestAuthentication.RefuseIfRetiredAsync(context, principal))
        {
            return;
        }

        var (result, project) = await _store.CreateProjectAsync(org.Key, name!, _clock.GetUtcNow().ToUnixTimeMilliseconds());
        switch (result)
        {
            case CreateResult.DuplicateName:
                await Problems.Conflict(context, "duplicate-name", $"Organization '{orgId}' already has a project named '{name}'.");
                return;
            case CreateResult.ParentNotFound:
                await Problems.NotFound(context, $"Organization '{orgId}'");
                return;
        }

        Log.ProjectCreated(_logger, context.TraceIdentifier, project!.Id, org.Id, principal.TokenId);
        await JsonResponse.WriteAsync(context, StatusCodes.Status201Created, project, static (json, p) =>
        {
            json.WriteStartObject();
            json.WriteString("id"u8, p.Id);
            json.WriteString("org_id"u8, p.OrgId);
            json.WriteString("name"u8, p.Name);
            json.WriteTimestamp("created_at"u8, p.CreatedAtMs);
            json.WriteEndObject();
        });
    }
}
