using FastIngest.Storage;

namespace FastIngest.Auth;

/// <summary>Creates tokens: random text shown once, only an Argon2id hash of the secret stored.</summary>
public sealed class TokenIssuer
{
    private readonly ITenantStore _store;
    private readonly TimeProvider _clock;
    private readonly ISecretHasher _hasher;
    private readonly HashSlots? _hashSlots;

    public TokenIssuer(ITenantStore store, TimeProvider clock, ISecretHasher hasher, HashSlots? hashSlots = null)
    {
        _store = store;
        _clock = clock;
        _hasher = hasher;
        _hashSlots = hashSlots;
    }

    /// <summary>
    /// <see cref="IssueUnpooledAsync"/> for request paths: the hash runs in one of the <see cref="HashSlots"/>, beside the
    /// verifications. <see cref="IssueAttempt.Busy"/> when no slot freed up in time (answer 503).
    /// </summary>
    public async Task<IssueAttempt> IssueAsync(TokenScope scope, long? orgKey, long? projectKey, string? name, TimeSpan? lifetime,
        string? issuedBy)
    {
        if (_hashSlots is null)
        {
            return new IssueAttempt(false, await IssueUnpooledAsync(scope, orgKey, projectKey, name, lifetime, issuedBy));
        }

        if (!await _hashSlots.TryEnterAsync())
        {
            return new IssueAttempt(true, null);
        }

        try
        {
            return new IssueAttempt(false, await IssueUnpooledAsync(scope, orgKey, projectKey, name, lifetime, issuedBy));
        }
        finally
        {
            _hashSlots.Exit();
        }
    }

    /// <summary>
    /// A new token, or null when nothing was stored: its org or project is gone or being deleted, or the token
    /// <paramref name="issuedBy"/> was revoked meanwhile (checked in the same statement as the insert).
    /// </summary>
    public async Task<(string Token, StoredToken Stored)?> IssueUnpooledAsync(TokenScope scope, long? orgKey, long? projectKey, string? name, TimeSpan? lifetime,
        string? issuedBy = null)
    {
        var (token, id) = ApiTokenFormat.Generate(scope);
        return await RegisterAsync(token, id, scope, orgKey, projectKey, name, lifetime, issuedBy) is { } stored ? (token, stored) : null;
    }

    /// <summary>Stores the hash of a token whose text was made elsewhere (the operator's admin token).</summary>
    public async Task<StoredToken?> RegisterAsync(string token, string id, TokenScope scope, long? orgKey, long? projectKey, string? name, TimeSpan? lifetime,
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
        return await _store.InsertTokenAsync(stored, issuedBy) ? stored : null;
    }
}

/// <summary>What a pooled issue came to: busy (no hash slot in time), or <see cref="Issued"/> (null: not stored).</summary>
public readonly record struct IssueAttempt(bool Busy, (string Token, StoredToken Stored)? Issued);
