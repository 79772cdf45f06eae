using FastIngest.Auth;
using FastIngest.Http;
using FastIngest.Storage;

namespace FastIngest.Reading;

/// <summary>
/// Which project a read is about: a project token's own project (a <c>project_id</c> naming another is a 404),
/// or, for admin and org tokens, the <c>project_id</c> query parameter (404 when it is not theirs, exactly as
/// if it did not exist).
/// </summary>
public sealed class ProjectResolver
{
    private readonly ITenantStore _tenants;

    public ProjectResolver(ITenantStore tenants) => _tenants = tenants;

    /// <summary>The project's (key, public id), or null after the error response has been written.</summary>
    public async ValueTask<(long Key, string Id)?> ResolveAsync(HttpContext context, Principal principal)
    {
        var requested = context.Request.Query["project_id"];
        if (principal.ProjectKey is { } own)
        {
            // A project token may name its own project; naming any other is a 404, never silently its own data.
            if (requested.Count > 0 && (requested.Count != 1 || requested[0] != principal.ProjectId))
            {
                await Problems.NotFound(context, $"Project '{requested[0]}'");
                return null;
            }

            return (own, principal.ProjectId!);
        }

        if (requested.Count != 1 || string.IsNullOrEmpty(requested[0]))
        {
            await Problems.Validation(context, [new FieldError("project_id", "is required for admin and org tokens")]);
            return null;
        }

        var project = await _tenants.FindProjectAsync(requested[0]!);
        if (project is null || !principal.Owns(project))
        {
            await Problems.NotFound(context, $"Project '{requested[0]}'");
            return null;
        }

        return (project.Key, project.Id);
    }
}
