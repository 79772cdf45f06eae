using FastIngest.Configuration;
using FastIngest.Storage;

namespace FastIngest.Auth;

/// <summary>
/// Makes sure the server has an admin credential before it serves: the operator's
/// <c>FASTINGEST_ADMIN_TOKEN</c>, or on first start a generated one, printed once and saved with mode 0600.
/// </summary>
public static class AdminTokenBootstrap
{
    public static void Ensure(ServerOptions options, ITenantStore store, TokenIssuer issuer, TextWriter console)
    {
        if (options.AdminToken is { } configured)
        {
            if (!ApiTokenFormat.IsWellFormed(configured, out var scope) || scope != TokenScope.Admin)
            {
                throw new InvalidOperationException(
                    "FASTINGEST_ADMIN_TOKEN is not a well-formed admin token (fia_...). Generate one with 'fastingest new-admin-token'.");
            }

            var id = ApiTokenFormat.IdOf(configured).ToString();
            var existing = store.FindToken(id);
            if (existing is null)
            {
                issuer.Register(configured, id, TokenScope.Admin, null, null, "admin (FASTINGEST_ADMIN_TOKEN)", null);
            }
            else if (existing.Scope != "admin" || existing.RevokedAtMs is not null)
            {
                throw new InvalidOperationException("FASTINGEST_ADMIN_TOKEN names a token that is revoked or not an admin token.");
            }

            return;
        }

        if (store.HasActiveAdminToken())
        {
            return;
        }

        var (token, _) = issuer.Issue(TokenScope.Admin, null, null, "admin (generated on first start)", null);
        WriteSecretFile(options.AdminTokenPath, token);
        console.WriteLine($"Admin token (shown once, also saved to {options.AdminTokenPath} with mode 0600):");
        console.WriteLine(token);
        console.Flush();
    }

    private static void WriteSecretFile(string path, string token)
    {
        var fileOptions = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(path, fileOptions))
        using (var writer = new StreamWriter(stream))
        {
            writer.WriteLine(token);
        }

        // UnixCreateMode applies only to new files; tighten an older file too.
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }
}
