using FastIngest.Storage;

namespace FastIngest.Auth;

/// <summary>
/// Tenant rules in one place. Scope decides whether a route is allowed at all (else 403); ownership decides
/// whether an object is visible (else 404, exactly as if it did not exist).
/// </summary>
public static class Access
{
    public static bool CanManage(this Principal principal) => principal.Scope is TokenScope.Admin or TokenScope.Org;

    public static bool Owns(this Principal principal, OrgRecord org) =>
        principal.Scope == TokenScope.Admin || (principal.Scope == TokenScope.Org && principal.OrgKey == org.Key);

    public static bool Owns(this Principal principal, ProjectRecord project) => principal.Scope switch
    {
        TokenScope.Admin => true,
        TokenScope.Org => principal.OrgKey == project.OrgKey,
        _ => principal.ProjectKey == project.Key,
    };

    public static bool Owns(this Principal principal, StoredToken token) => principal.Scope switch
    {
        TokenScope.Admin => true,
        TokenScope.Org => token.OrgKey is not null && principal.OrgKey == token.OrgKey,
        _ => false,
    };
}
