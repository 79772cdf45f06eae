namespace FastIngest.Storage;

/// <summary>
/// How many active tokens one owner may hold per scope (a project's ingest tokens, its read tokens, an org's org
/// tokens). Far above what any CI fleet uses (one token per pipeline is the norm), low enough that one tenant
/// minting in a loop cannot grow the token table and the Argon2 work without bound. Revoked and expired tokens
/// do not count.
/// </summary>
public static class TokenLimits
{
    public const int ActivePerOwner = 1000;
}
