using System.Globalization;
using FastIngest.Auth;
using FastIngest.Http;
using FastIngest.RateLimiting;
using FastIngest.Storage;

namespace FastIngest.Quarantine;

/// <summary>
/// <c>GET /v1/projects/{id}/quarantine</c> (any token that may read the project),
/// <c>POST /v1/projects/{id}/quarantine {suite, name, reason, expires_at?}</c> and
/// <c>DELETE /v1/projects/{id}/quarantine/{entry}</c> (org and admin tokens). Another tenant's project is a 404.
/// </summary>
public sealed class QuarantineEndpoints
{
    private const string EntryPrefix = "qua_";
    private const int MaxReasonLength = 1000;

    private readonly RequestAuthentication _auth;
    private readonly Management.ManagedObjectAccess _access;
    private readonly ITenantStore _tenants;
    private readonly IQuarantineStore _store;
    private readonly QuarantineSet _set;
    private readonly TimeProvider _clock;
    private readonly AutoQuarantine _auto;

    public QuarantineEndpoints(RequestAuthentication auth, Management.ManagedObjectAccess access, ITenantStore tenants, IQuarantineStore store,
        QuarantineSet set, TimeProvider clock, AutoQuarantine auto)
    {
        _access = access;
        _auto = auto;
        _auth = auth;
        _tenants = tenants;
        _store = store;
        _set = set;
        _clock = clock;
    }

    public async Task ListAsync(HttpContext context)
    {
        if (await OpenForReadingAsync(context) is not { } project)
        {
            return;
        }

        var entries = await _store.ActiveAsync(project.Key, _clock.GetUtcNow().ToUnixTimeMilliseconds());
        var changes = await _store.ChangesAsync(project.Key, 50);
        var policy = await _store.PolicyAsync(project.Key);
        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (project, entries, changes, policy), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("project_id"u8, s.project.Id);
            WritePolicy(json, s.policy);
            json.WriteStartArray("tests"u8);
            foreach (var entry in s.entries)
            {
                WriteEntry(json, entry);
            }

            json.WriteEndArray();
            json.WriteStartArray("changes"u8);
            foreach (var change in s.changes)
            {
                json.WriteStartObject();
                json.WriteString("action"u8, change.Action);
                json.WriteString("suite"u8, change.Suite);
                json.WriteString("name"u8, change.Name);
                json.WriteString("reason"u8, change.Reason);
                json.WriteString("by"u8, change.By);
                json.WriteTimestamp("at"u8, change.AtMs);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    public async Task PutAsync(HttpContext context)
    {
        if (await _access.AuthorizeAsync(context, RateLimitPolicy.Management, "Changing the quarantine") is not var (principal, project))
        {
            return;
        }

        using var body = await JsonBody.ReadAsync(context, "suite", "name", "reason", "expires_at");
        if (body is null)
        {
            return;
        }

        var suite = body.Text("suite", required: true, FastIngest.TestCases.TestCaseLimits.MaxSuiteLength);
        var name = body.Text("name", required: true, FastIngest.TestCases.TestCaseLimits.MaxNameLength);
        var reason = body.Text("reason", required: true, MaxReasonLength);
        var expiresText = body.Text("expires_at", required: false, 40);
        long? expiresAtMs = null;
        var now = _clock.GetUtcNow();
        if (expiresText is not null)
        {
            if (DateTimeOffset.TryParse(expiresText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var expires) && expires > now)
            {
                expiresAtMs = expires.ToUnixTimeMilliseconds();
            }
            else
            {
                body.AddError("expires_at", "must be a date-time in the future, e.g. 2026-12-31T00:00:00Z");
            }
        }

        if (name is { Length: 0 })
        {
            body.AddError("name", "must not be empty");
        }

        if (body.HasErrors)
        {
            await Problems.Validation(context, body.Errors);
            return;
        }

        if (await RequestAuthentication.RefuseIfRetiredAsync(context, principal))
        {
            return;
        }

        var (entry, created) = await _store.PutAsync(project.Key, suite!, name!, reason!, expiresAtMs, principal.TokenId, now.ToUnixTimeMilliseconds());
        _set.Changed(project.Key);
        await JsonResponse.WriteAsync(context, created ? StatusCodes.Status201Created : StatusCodes.Status200OK, entry, static (json, e) =>
        {
            WriteEntry(json, e);
        });
    }

    /// <summary>
    /// <c>PUT /v1/projects/{id}/quarantine/policy {auto, release_after_days?}</c>: tests that flaked within the quiet
    /// period (default 14 days) are quarantined automatically, and released after that many quiet days.
    /// </summary>
    public async Task PolicyAsync(HttpContext context)
    {
        if (await _access.AuthorizeAsync(context, RateLimitPolicy.Management, "Changing the quarantine") is not var (principal, project))
        {
            return;
        }

        using var body = await JsonBody.ReadAsync(context, "auto", "release_after_days");
        if (body is null)
        {
            return;
        }

        var auto = body.Boolean("auto", required: true);
        var days = body.WholeNumber("release_after_days", 1, 365) ?? 14;
        if (body.HasErrors)
        {
            await Problems.Validation(context, body.Errors);
            return;
        }

        if (await RequestAuthentication.RefuseIfRetiredAsync(context, principal))
        {
            return;
        }

        int? policy = auto == true ? (int)days : null;
        await _store.SetPolicyAsync(project.Key, policy, principal.TokenId, _clock.GetUtcNow().ToUnixTimeMilliseconds());
        if (policy is { } quietDays)
        {
            await _auto.ApplyAsync(project.Key, quietDays); // takes effect now, not at the next round
        }

        await JsonResponse.WriteAsync(context, StatusCodes.Status200OK, (project, policy), static (json, s) =>
        {
            json.WriteStartObject();
            json.WriteString("project_id"u8, s.project.Id);
            WritePolicy(json, s.policy);
            json.WriteEndObject();
        });
    }

    private static void WritePolicy(System.Text.Json.Utf8JsonWriter json, int? releaseAfterDays)
    {
        json.WriteStartObject("policy"u8);
        json.WriteBoolean("auto"u8, releaseAfterDays is not null);
        if (releaseAfterDays is { } days)
        {
            json.WriteNumber("release_after_days"u8, days);
        }

        json.WriteEndObject();
    }

    public async Task RemoveAsync(HttpContext context)
    {
        if (await _access.AuthorizeAsync(context, RateLimitPolicy.Management, "Changing the quarantine") is not var (principal, project))
        {
            return;
        }

        var text = context.Request.RouteValues["entry"] as string ?? "";
        if (!text.StartsWith(EntryPrefix, StringComparison.Ordinal)
            || !long.TryParse(text.AsSpan(EntryPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var key)
            || await RequestAuthentication.RefuseIfRetiredAsync(context, principal)
            || await _store.RemoveAsync(project.Key, key, principal.TokenId, _clock.GetUtcNow().ToUnixTimeMilliseconds()) is null)
        {
            if (!context.Response.HasStarted)
            {
                await Problems.NotFound(context, $"Quarantine entry '{text}'");
            }

            return;
        }

        _set.Changed(project.Key);
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    private static void WriteEntry(System.Text.Json.Utf8JsonWriter json, QuarantineEntry entry)
    {
        json.WriteStartObject();
        json.WriteString("id"u8, EntryPrefix + entry.Key.ToString(CultureInfo.InvariantCulture));
        json.WriteString("suite"u8, entry.Suite);
        json.WriteString("name"u8, entry.Name);
        json.WriteString("reason"u8, entry.Reason);
        json.WriteString("by"u8, entry.CreatedBy);
        json.WriteTimestamp("since"u8, entry.CreatedAtMs);
        json.WriteTimestamp("expires_at"u8, entry.ExpiresAtMs);
        json.WriteBoolean("auto"u8, entry.Auto);
        json.WriteEndObject();
    }

    /// <summary>
    /// The route's project for any token that may read it (a project token its own, managers theirs), or null once the
    /// refusal is written (404 when it is not theirs). Changes go through <see cref="Management.ManagedObjectAccess"/>.
    /// </summary>
    private async Task<ProjectRecord?> OpenForReadingAsync(HttpContext context)
    {
        if (await _auth.AuthenticateAsync(context, RateLimitPolicy.Read) is not { } principal)
        {
            return null;
        }

        var id = context.Request.RouteValues["id"] as string ?? "";
        if (await _tenants.FindProjectAsync(id) is not { } project || !principal.Owns(project))
        {
            await Problems.NotFound(context, $"Project '{id}'");
            return null;
        }

        return project;
    }
}
