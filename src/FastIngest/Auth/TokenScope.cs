namespace FastIngest.Auth;

/// <summary>What a token may do. The marker letter is part of the token text, so a leaked token shows its power.</summary>
public enum TokenScope : byte
{
    /// <summary>The server's own credential: everything.</summary>
    Admin,

    /// <summary>Manages one organization: its projects and their tokens.</summary>
    Org,

    /// <summary>Writes and reads one project's runs.</summary>
    Ingest,

    /// <summary>Reads one project's runs.</summary>
    Read,
}

internal static class TokenScopeNames
{
    public static string ToName(this TokenScope scope) => scope switch
    {
        TokenScope.Admin => "admin",
        TokenScope.Org => "org",
        TokenScope.Ingest => "ingest",
        _ => "read",
    };

    public static bool TryParse(string? name, out TokenScope scope)
    {
        switch (name)
        {
            case "admin": scope = TokenScope.Admin; return true;
            case "org": scope = TokenScope.Org; return true;
            case "ingest": scope = TokenScope.Ingest; return true;
            case "read": scope = TokenScope.Read; return true;
            default: scope = default; return false;
        }
    }

    public static char ToMarker(this TokenScope scope) => scope switch
    {
        TokenScope.Admin => 'a',
        TokenScope.Org => 'o',
        TokenScope.Ingest => 'i',
        _ => 'r',
    };

    public static bool TryFromMarker(char marker, out TokenScope scope)
    {
        switch (marker)
        {
            case 'a': scope = TokenScope.Admin; return true;
            case 'o': scope = TokenScope.Org; return true;
            case 'i': scope = TokenScope.Ingest; return true;
            case 'r': scope = TokenScope.Read; return true;
            default: scope = default; return false;
        }
    }
}
