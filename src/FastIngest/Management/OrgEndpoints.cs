using FastIngest.Auth;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Storage;

namespace FastIngest.Management;

/// <summary><c>POST /v1/orgs</c>: admin only. Returns the org and a token that manages it, shown once.</summary>
public sealed class OrgEndpoints
{
    public const int MaxNameLength = 200;
    private readonly RequestAuthentication _auth;
    private readonly ITenantStore _store;
    private readonly TokenIssuer _issuer;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;

    public OrgEndpoints(RequestAuthentication auth, ITenantStore store, TokenIssuer issuer, TimeProvider clock, ILoggerFactory loggers)
    {
        _auth = auth;
        _store = store;
        _issuer = issuer;
        _clock = clock;
        _logger = loggers.CreateLogger("FastIngest.Management");
    }

    public async Task CreateAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Management) is not { } principal)
        {
            return;
        }

        if (principal.Scope != TokenScope.Admin)
        {
            await Problems.Forbidden(context, "Creating organizations needs the admin token.");
            return;
        }

        using var body = await JsonBody.ReadAsync(context, "name");
        if (body is null)
        {
            return;
        }

        var name = body.Text("name", required: true, MaxNameLength);
        if (body.HasErrors)
        {
            await Problems.Validation(context, body.Errors);
            return;
        }

        if (await RequestAuthentication.RefuseIfRetiredAsync(context, principal))
        {
            return;
        }

        var (result, org) = await _store.CreateOrgAsync(name!, _clock.GetUtcNow().ToUnixTimeMilliseconds());
        if (result == CreateResult.DuplicateName)
        {
            await Problems.Conflict(context, "duplicate-name", $"An organization named '{name}' already exists.");
            return;
        }

        var attempt = await _issuer.IssueAsync(TokenScope.Org, org!.Key, null, "org token (created with the org)", null, principal.TokenId);
        if (attempt.Busy)
        {
            // The org exists without its first token; another org token can be created for it with POST /v1/tokens.
            await Problems.Unavailable(context, "hashing-busy", "The organization was created but its token could not be hashed in time; create one with POST /v1/tokens.");
            return;
        }

        if (attempt.Issued is not var (token, stored))
        {
            // Deleted by another request between our insert and this one.
            await Problems.NotFound(context, $"Organization '{org.Id}'");
            return;
        }

        Log.OrgCreated(_logger, context.TraceIdentifier, org.Id, principal.TokenId);
        Log.TokenCreated(_logger, context.TraceIdentifier, stored.Id, stored.Scope, org.Id, null, principal.TokenId);
        await JsonResponse.WriteAsync(context, StatusCodes.Status201Created, (org, token, stored), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("id"u8, s.org.Id);
            json.WriteString("name"u8, s.org.Name);
            json.WriteTimestamp("created_at"u8, s.org.CreatedAtMs);
            json.WriteStartObject("token"u8);
            TokenEndpoints.WriteCreatedToken(json, s.token, s.stored, s.org.Id, null);
            json.WriteEndObject();
            json.WriteEndObject();
        });
    }
}
