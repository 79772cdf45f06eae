using System.Text.Json;
using FastIngest.Auth;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Storage;

namespace FastIngest.Management;

/// <summary>
/// Token lifecycle: create (the raw token is in this one response only), list (never a secret or hash),
/// revoke (takes effect on the next request: the cache entry is evicted).
/// </summary>
public sealed class TokenEndpoints
{
    public const long MaxLifetimeSeconds = 10L * 365 * 24 * 60 * 60;
    private readonly RequestAuthentication _auth;
    private readonly ITenantStore _store;
    private readonly TokenIssuer _issuer;
    private readonly Authenticator _authenticator;
    private readonly TokenUsageFlusher _usage;
    private readonly ManagedObjectAccess _projects;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;

    public TokenEndpoints(RequestAuthentication auth, ITenantStore store, TokenIssuer issuer, Authenticator authenticator,
        TokenUsageFlusher usage, ManagedObjectAccess projects, TimeProvider clock, ILoggerFactory loggers)
    {
        _projects = projects;
        _auth = auth;
        _store = store;
        _issuer = issuer;
        _authenticator = authenticator;
        _usage = usage;
        _clock = clock;
        _logger = loggers.CreateLogger("FastIngest.Security");
    }

    /// <summary><c>POST /v1/tokens {project_id | org_id, scope?, name?, expires_in?}</c>.</summary>
    public async Task CreateAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Management) is not { } principal)
        {
            return;
        }

        if (!principal.CanManage())
        {
            await Problems.Forbidden(context, "Creating tokens needs an admin or org token.");
            return;
        }

        using var body = await JsonBody.ReadAsync(context, "project_id", "org_id", "scope", "name", "expires_in");
        if (body is null)
        {
            return;
        }

        var scopeText = body.Text("scope", required: false, 16) ?? "ingest";
        if (!TokenScopeNames.TryParse(scopeText, out var scope) || scope == TokenScope.Admin)
        {
            body.AddError("scope", "must be one of ingest, read, org");
        }

        var projectId = body.Text("project_id", required: scope != TokenScope.Org, 64);
        var orgId = body.Text("org_id", required: scope == TokenScope.Org, 64);
        if (scope != TokenScope.Org && orgId is not null)
        {
            body.AddError("org_id", "is only used with scope 'org'; project tokens take project_id");
        }
        else if (scope == TokenScope.Org && projectId is not null)
        {
            body.AddError("project_id", "is not used with scope 'org'");
        }

        var name = body.Text("name", required: false, 200);
        var lifetime = body.WholeNumber("expires_in", 1, MaxLifetimeSeconds);
        if (body.HasErrors)
        {
            await Problems.Validation(context, body.Errors);
            return;
        }

        long? orgKey;
        long? projectKey = null;
        if (scope == TokenScope.Org)
        {
            var org = await _store.FindOrgAsync(orgId!);
            if (org is null || !principal.Owns(org))
            {
                await Problems.NotFound(context, $"Organization '{orgId}'");
                return;
            }

            orgKey = org.Key;
        }
        else
        {
            var project = await _store.FindProjectAsync(projectId!);
            if (project is null || !principal.Owns(project))
            {
                await Problems.NotFound(context, $"Project '{projectId}'");
                return;
            }

            orgKey = project.OrgKey;
            orgId = project.OrgId;
            projectKey = project.Key;
        }

        if (await RequestAuthentication.RefuseIfRetiredAsync(context, principal))
        {
            return;
        }

        if (await RefuseAtLimitAsync(context, scope, orgKey, projectKey))
        {
            return;
        }

        var attempt = await _issuer.IssueAsync(scope, orgKey, projectKey, name, lifetime is { } seconds ? TimeSpan.FromSeconds(seconds) : null,
            principal.TokenId);
        if (attempt.Busy)
        {
            await Problems.Unavailable(context, "hashing-busy", "Token hashing is saturated; retry shortly.");
            return;
        }

        if (attempt.Issued is not var (token, stored))
        {
            // Its org or project began to be deleted, the caller's own token was revoked, or a racing request took
            // the last place, after our checks: the token was not stored.
            if (await RefuseAtLimitAsync(context, scope, orgKey, projectKey))
            {
                return;
            }

            await Problems.NotFound(context, projectKey is null ? $"Organization '{orgId}'" : $"Project '{projectId}'");
            return;
        }

        Log.TokenCreated(_logger, context.TraceIdentifier, stored.Id, stored.Scope, orgId, projectId, principal.TokenId);
        await JsonResponse.WriteAsync(context, StatusCodes.Status201Created, (token, stored, orgId, projectId), static (json, s) =>
        {
            json.WriteStartObject();
            WriteCreatedToken(json, s.token, s.stored, s.orgId, s.projectId);
            json.WriteEndObject();
        });
    }

    /// <summary><c>GET /v1/projects/{id}/tokens</c>.</summary>
    public async Task ListAsync(HttpContext context)
    {
        if (await _projects.AuthorizeAsync(context, RateLimitPolicy.Management, "Listing tokens") is not var (_, project))
        {
            return;
        }

        await _usage.FlushNowAsync(); // so last_used_at is current, not up to one flush interval old
        var tokens = await _store.ListProjectTokensAsync(project.Key);
        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (project, tokens), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("project_id"u8, s.project.Id);
            json.WriteStartArray("tokens"u8);
            foreach (var token in s.tokens)
            {
                json.WriteStartObject();
                json.WriteString("id"u8, token.Id);
                json.WriteString("name"u8, token.Name);
                json.WriteString("scope"u8, token.Scope);
                json.WriteTimestamp("created_at"u8, token.CreatedAtMs);
                json.WriteTimestamp("expires_at"u8, token.ExpiresAtMs);
                json.WriteTimestamp("last_used_at"u8, token.LastUsedAtMs);
                json.WriteTimestamp("revoked_at"u8, token.RevokedAtMs);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    /// <summary><c>DELETE /v1/tokens/{id}</c>: 204, also when it was already revoked.</summary>
    public async Task RevokeAsync(HttpContext context)
    {
        if (await _projects.AuthorizeTokenAsync(context, RateLimitPolicy.Management, "Revoking tokens") is not var (principal, token))
        {
            return;
        }

        var tokenId = token.Id;
        try
        {
            if (await _store.RevokeTokenAsync(tokenId, _clock.GetUtcNow().ToUnixTimeMilliseconds()))
            {
                Log.TokenRevoked(_logger, context.TraceIdentifier, tokenId, principal.TokenId);
            }
        }
        finally
        {
            _authenticator.RetireToken(tokenId); // also when the write failed: it may have committed without its flush
        }

        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    private async Task<bool> RefuseAtLimitAsync(HttpContext context, TokenScope scope, long? orgKey, long? projectKey)
    {
        if (await _store.CountActiveTokensAsync(scope.ToName(), orgKey, projectKey, _clock.GetUtcNow().ToUnixTimeMilliseconds()) < TokenLimits.ActivePerOwner)
        {
            return false;
        }

        await Problems.Conflict(context, "token-limit",
            $"There are already {TokenLimits.ActivePerOwner} active {scope.ToName()} tokens here; revoke unused ones first.");
        return true;
    }

    internal static void WriteCreatedToken(Utf8JsonWriter json, string token, StoredToken stored, string? orgId, string? projectId)
    {
        json.WriteString("id"u8, stored.Id);
        json.WriteString("token"u8, token);
        json.WriteString("scope"u8, stored.Scope);
        json.WriteString("org_id"u8, orgId);
        json.WriteString("project_id"u8, projectId);
        json.WriteString("name"u8, stored.Name);
        json.WriteTimestamp("created_at"u8, stored.CreatedAtMs);
        json.WriteTimestamp("expires_at"u8, stored.ExpiresAtMs);
    }
}
