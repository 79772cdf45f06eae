using FastIngest.Storage;

namespace FastIngest.Auth;

/// <summary>Creates tokens: random text shown once, only an Argon2id hash of the secret stored.</summary>
public sealed class TokenIssuer
{
    private readonly ITenantStore _store;
    private readonly TimeProvider _clock;
    private readonly ISecretHasher _hasher;

    public TokenIssuer(ITenantStore store, TimeProvider clock, ISecretHasher hasher)
    {
        _store = store;
        _clock = clock;
        _hasher = hasher;
    }

    /// <summary>
    /// A new token, or null when nothing was stored: its org or project is gone or being deleted, or the token
    /// <paramref name="issuedBy"/> was revoked meanwhile (checked in the same statement as the insert).
    /// </summary>
    public (string Token, StoredToken Stored)? Issue(TokenScope scope, long? orgKey, long? projectKey, string? name, TimeSpan? lifetime,
        string? issuedBy = null)
    {
        var (token, id) = ApiTokenFormat.Generate(scope);
        return Register(token, id, scope, orgKey, projectKey, name, lifetime, issuedBy) is { } stored ? (token, stored) : null;
    }

    /// <summary>Stores the hash of a token whose text was made elsewhere (the operator's admin token).</summary>
    public StoredToken? Register(string token, string id, TokenScope scope, long? orgKey, long? projectKey, string? name, TimeSpan? lifetime,
        string? issuedBy = null)
    {
        var nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var stored = new StoredToken(
            id,
            _hasher.Hash(ApiTokenFormat.SecretOf(token)),
            scope.ToName(),
            orgKey,
            null,
            projectKey,
            null,
            name,
            nowMs,
            lifetime is { } l ? nowMs + (long)l.TotalMilliseconds : null,
            null,
            null);
        return _store.InsertToken(stored, issuedBy) ? stored : null;
    }
}
