using FastIngest.Auth;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Storage;

namespace FastIngest.Management;

/// <summary>
/// The check every "manage this project" route starts with: authenticate, require an admin or org scope
/// (else 403), resolve <c>{id}</c> to a project the caller owns (else 404, as if it did not exist).
/// </summary>
public sealed class ManagedProjectAccess
{
    private readonly RequestAuthentication _auth;
    private readonly ITenantStore _tenants;

    public ManagedProjectAccess(RequestAuthentication auth, ITenantStore tenants)
    {
        _auth = auth;
        _tenants = tenants;
    }

    /// <summary>The caller and the project, or null once the refusal has been written.</summary>
    public async ValueTask<(Principal Principal, ProjectRecord Project)?> AuthorizeAsync(HttpContext context, RateLimitPolicy policy, string what)
    {
        if (await _auth.AuthenticateAsync(context, policy) is not { } principal)
        {
            return null;
        }

        if (!principal.CanManage())
        {
            await Problems.Forbidden(context, $"{what} needs an admin or org token.");
            return null;
        }

        var projectId = (string)context.Request.RouteValues["id"]!;
        var project = _tenants.FindProject(projectId);
        if (project is null || !principal.Owns(project))
        {
            await Problems.NotFound(context, $"Project '{projectId}'");
            return null;
        }

        return (principal, project);
    }
}
