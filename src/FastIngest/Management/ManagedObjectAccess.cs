using FastIngest.Auth;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Storage;

namespace FastIngest.Management;

/// <summary>
/// The check every "manage this object" route starts with: authenticate, require an admin or org scope (else
/// 403), resolve the route's <c>{id}</c> to an object the caller owns (else 404, as if it did not exist).
/// </summary>
public sealed class ManagedObjectAccess
{
    private readonly RequestAuthentication _auth;
    private readonly ITenantStore _tenants;

    public ManagedObjectAccess(RequestAuthentication auth, ITenantStore tenants)
    {
        _auth = auth;
        _tenants = tenants;
    }

    /// <summary>The caller and the project, or null once the refusal has been written.</summary>
    public ValueTask<(Principal Principal, ProjectRecord Project)?> AuthorizeAsync(HttpContext context, RateLimitPolicy policy, string what) =>
        AuthorizeAsync(context, policy, what, "Project", _tenants.FindProjectAsync, static (p, project) => p.Owns(project));

    public ValueTask<(Principal Principal, OrgRecord Org)?> AuthorizeOrgAsync(HttpContext context, RateLimitPolicy policy, string what) =>
        AuthorizeAsync(context, policy, what, "Organization", _tenants.FindOrgAsync, static (p, org) => p.Owns(org));

    public ValueTask<(Principal Principal, StoredToken Token)?> AuthorizeTokenAsync(HttpContext context, RateLimitPolicy policy, string what) =>
        AuthorizeAsync(context, policy, what, "Token", _tenants.FindTokenAsync, static (p, token) => p.Owns(token));

    private async ValueTask<(Principal, T)?> AuthorizeAsync<T>(HttpContext context, RateLimitPolicy policy, string what, string kind,
        Func<string, ValueTask<T?>> find, Func<Principal, T, bool> owns)
        where T : class
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

        var id = (string)context.Request.RouteValues["id"]!;
        var found = await find(id);
        if (found is null || !owns(principal, found))
        {
            await Problems.NotFound(context, $"{kind} '{id}'");
            return null;
        }

        return (principal, found);
    }
}
