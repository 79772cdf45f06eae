using FastIngest.Configuration;
using FastIngest.Storage;

namespace FastIngest.Auth;

/// <summary>
/// Makes sure the server has an admin credential before it serves: the operator's
/// <c>FASTINGEST_ADMIN_TOKEN</c>, or on first start a generated one, saved with mode 0600 (only its path is printed).
/// </summary>
public static class AdminTokenBootstrap
{
    /// <remarks>
    /// Under the storage's start-up lock: nodes starting together on one database take turns, so the first registers
    /// the configured token (or generates one) and the others find it.
    /// </remarks>
    public static async Task EnsureAsync(ServerOptions options, ITenantStore store, TokenIssuer issuer, IStartupLock startupLock, TextWriter console)
    {
        await using var turn = await startupLock.AcquireAsync(CancellationToken.None);
        if (options.AdminToken is { } configured)
        {
            if (!ApiTokenFormat.IsWellFormed(configured, out var scope) || scope != TokenScope.Admin)
            {
                throw new InvalidOperationException(
                    "FASTINGEST_ADMIN_TOKEN is not a well-formed admin token (fia_...). Generate one with 'fastingest new-admin-token'.");
            }

            var id = ApiTokenFormat.IdOf(configured).ToString();
            var existing = await store.FindTokenAsync(id);
            if (existing is null)
            {
                await issuer.RegisterAsync(configured, id, TokenScope.Admin, null, null, "admin (FASTINGEST_ADMIN_TOKEN)", null);
            }
            else if (existing.Scope != "admin" || existing.RevokedAtMs is not null)
            {
                throw new InvalidOperationException("FASTINGEST_ADMIN_TOKEN names a token that is revoked or not an admin token.");
            }

            return;
        }

        if (await store.HasActiveAdminTokenAsync())
        {
            return;
        }

        // The file first: a token registered but never saved could not be recovered by anyone.
        var (token, generatedId) = ApiTokenFormat.Generate(TokenScope.Admin);
        PrivateFiles.WriteSecret(options.AdminTokenPath, token);
        _ = await issuer.RegisterAsync(token, generatedId, TokenScope.Admin, null, null, "admin (generated on first start)", null)
            ?? throw new InvalidOperationException("The admin token could not be stored.");
        // Never the token itself: stdout is the stream log shippers collect.
        console.WriteLine($"Admin token created and saved to {options.AdminTokenPath} (mode 0600); read it from there.");
        console.Flush();
    }
}
