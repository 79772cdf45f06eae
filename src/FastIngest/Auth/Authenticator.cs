using System.Net;
using System.Collections.Concurrent;
using FastIngest.Configuration;
using FastIngest.Observability;
using FastIngest.RateLimiting;
using FastIngest.Storage;
using Microsoft.Extensions.Primitives;
using Prometheus;

namespace FastIngest.Auth;

/// <summary>
/// Turns an <c>Authorization: Bearer</c> header into a <see cref="Principal"/>.
/// Hot path (cache hit): shape and checksum check, one XxHash128, one dictionary read, an expiry check.
/// Miss: one indexed read by token id, then Argon2id in a pool of at most one per core, single-flighted per
/// token so a burst of first uses costs one hash.
/// <para>
/// Revocation and deletion are final at once: <see cref="RetireToken"/>, <see cref="RetireProject"/> and
/// <see cref="RetireOrg"/> run after the change is committed, evict every matching principal and bump a
/// retirement generation. A verification reads the generation before the token's row and caches its principal
/// only if the generation is unchanged (checked under the same lock); otherwise it reads the row again. So a
/// revocation that lands while Argon2 runs can never leave a stale principal cached.
/// </para>
/// </summary>
public sealed class Authenticator : IRetirementSink
{
    private static readonly TimeSpan s_negativeTtl = TimeSpan.FromSeconds(10);
    private const int MaxNegativeEntries = 100_000;

    /// <summary>How often a first use re-reads its row because retirements landed meanwhile, before it answers 503.</summary>
    private const int MaxRereads = 8;

    private readonly ITenantStore _store;
    private readonly TokenCache _cache;
    private readonly TimeProvider _clock;
    private readonly HashSlots _hashSlots;
    private readonly ConcurrentDictionary<UInt128, Lazy<Task<AuthResult>>> _inFlight = new();
    private readonly ConcurrentDictionary<UInt128, (AuthFailure Failure, long UntilMs)> _negative = new();
    private readonly Counter.Child _cacheHits, _cacheMisses;
    private readonly ServerMetrics _metrics;
    private readonly AuthFailureTracker _failures;
    private readonly ISecretHasher _hasher;
    private readonly Lock _retirement = new();
    private long _retirements;

    public Authenticator(ITenantStore store, TokenCache cache, TimeProvider clock, ServerOptions options, ServerMetrics metrics,
        AuthFailureTracker failures, ISecretHasher hasher, HashSlots hashSlots)
    {
        _hashSlots = hashSlots;
        _hasher = hasher;
        _failures = failures;

        _store = store;
        _cache = cache;
        _clock = clock;
        _metrics = metrics;
        _cacheHits = metrics.TokenCacheLookups.WithLabels("hit");
        _cacheMisses = metrics.TokenCacheLookups.WithLabels("miss");
    }

    /// <summary>How many Argon2 verifications ran; tests use it to prove single-flight.</summary>
    public long HashVerifications => Interlocked.Read(ref _hashVerifications);

    private long _hashVerifications;

    public ValueTask<AuthResult> AuthenticateAsync(StringValues authorization, IPAddress? client = null)
    {
        if (!TryGetBearer(authorization, out var token))
        {
            return Failed(AuthFailure.Missing);
        }

        if (!ApiTokenFormat.IsWellFormed(token, out _))
        {
            return Failed(AuthFailure.Malformed);
        }

        var key = _cache.KeyOf(token);
        var nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (_cache.TryGet(key, out var principal))
        {
            _cacheHits.Inc();
            if (principal.IsExpired(nowMs))
            {
                _cache.Remove(key);
                return Failed(AuthFailure.Expired);
            }

            principal.Touch(nowMs);
            return new ValueTask<AuthResult>(AuthResult.Success(principal));
        }

        _cacheMisses.Inc();
        if (_negative.TryGetValue(key, out var negative) && negative.UntilMs > nowMs)
        {
            return Failed(negative.Failure);
        }

        // Wrong secrets for a real id are counted per (id, client network): a blocked pair gets no database read
        // and no Argon2 until the block ends. A holder elsewhere is never blocked by someone guessing its id, and
        // its cached token (above) keeps working anyway. Nothing is counted per network alone: a tenant guessing
        // its own ids behind a NAT could then lock out every neighbour's first use (found by probing: it did).
        var tokenId = ApiTokenFormat.IdOf(token).ToString();
        var guesser = new Guesser(tokenId, tokenId + "|" + ClientNetwork.Of(client));
        if (_failures.BlockedSeconds(guesser.IdOnNetwork) is > 0 and var blocked)
        {
            return new ValueTask<AuthResult>(AuthResult.Blocked(blocked));
        }

        return new ValueTask<AuthResult>(VerifyOnceAsync(key, guesser, token.ToString()));
    }

    /// <summary>Call after the token's revocation is committed: no request authenticates with it from now on.</summary>
    public void RetireToken(string tokenId) => Retire(principal => principal.TokenId == tokenId);

    /// <summary>Many revocations (revoke-all) in one pass over the cache.</summary>
    public void RetireTokens(IReadOnlyCollection<string> tokenIds)
    {
        var ids = tokenIds.ToHashSet(StringComparer.Ordinal);
        Retire(principal => ids.Contains(principal.TokenId));
    }

    /// <summary>Call after a project's deletion began (committed): every token of it stops working at once.</summary>
    public void RetireProject(long projectKey) => Retire(principal => principal.ProjectKey == projectKey);

    /// <summary>
    /// Call after an org's deletion began (committed): every org and project token of it stops working (project
    /// principals carry their org).
    /// </summary>
    public void RetireOrg(long orgKey) => Retire(principal => principal.OrgKey == orgKey);

    void IRetirementSink.TokenRetired(string tokenId) => RetireToken(tokenId);

    void IRetirementSink.ProjectRetired(long projectKey) => RetireProject(projectKey);

    void IRetirementSink.OrgRetired(long orgKey) => RetireOrg(orgKey);

    /// <summary>Retirements may have been missed (another node's feed was lost): see <see cref="RecheckCachedAsync"/>.</summary>
    void IRetirementSink.Resynchronize() => _ = RecheckCachedAsync();

    /// <summary>
    /// Reads every cached token's row again and retires those now revoked, expired or of a deleted project or org.
    /// A row read per token, no Argon2: forgetting the whole cache instead would make every token of the fleet
    /// re-verify at once, the cold-restart storm. Returns how many were retired.
    /// </summary>
    public async Task<int> RecheckCachedAsync()
    {
        // Bumped first: a verification in flight that read its row before this pass caches nothing stale.
        lock (_retirement)
        {
            _retirements++;
        }

        var retired = 0;
        var nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var tokenId in _cache.Principals.Select(static p => p.TokenId).Distinct(StringComparer.Ordinal).ToList())
        {
            try
            {
                if (await _store.FindTokenAsync(tokenId) is not { RevokedAtMs: null } stored || stored.ExpiresAtMs <= nowMs)
                {
                    RetireToken(tokenId);
                    retired++;
                }
            }
            catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or IOException)
            {
                RetireToken(tokenId); // cannot tell: the next use verifies it again
                retired++;
            }
        }

        return retired;
    }

    private void Retire(Func<Principal, bool> match)
    {
        lock (_retirement)
        {
            _retirements++;
            _cache.RemoveWhere(match);
        }
    }

    private async Task<AuthResult> VerifyOnceAsync(UInt128 key, Guesser guesser, string token)
    {
        // GetOrAdd may run a factory for each racing caller but stores only one value; wrapping the work in
        // a Lazy means only the stored one ever starts, so a burst of first uses costs exactly one Argon2.
        var candidate = new Lazy<Task<AuthResult>>(() => VerifyAsync(key, guesser, token));
        var stored = _inFlight.GetOrAdd(key, candidate);
        try
        {
            var result = await stored.Value;
            // A caller that joined a verification finished just before a retirement must not get its principal.
            return result.Principal is { IsRetired: true } ? AuthResult.Fail(AuthFailure.Revoked) : result;
        }
        finally
        {
            if (ReferenceEquals(stored, candidate))
            {
                _inFlight.TryRemove(key, out _);
            }
        }
    }

    private async Task<AuthResult> VerifyAsync(UInt128 key, Guesser guesser, string token)
    {
        await Task.Yield(); // the first caller returns to its own await before the I/O starts

        // A caller that missed the cache just before the previous flight for this token cached its principal,
        // and reached the in-flight map just after that flight left it, starts a flight of its own: the
        // principal is already here, so it costs no read and no Argon2 (a flight caches before it leaves).
        if (_cache.TryGet(key, out var cached) && !cached.IsExpired(_clock.GetUtcNow().ToUnixTimeMilliseconds()))
        {
            return AuthResult.Success(cached);
        }

        var tokenId = guesser.TokenId;
        var secretVerified = false;
        for (var attempt = 0; ; attempt++)
        {
            if (attempt == MaxRereads)
            {
                // Retirements keep landing (a tenant revoking in a loop): give up for now rather than spin.
                return AuthResult.Fail(AuthFailure.Overloaded);
            }

            // Read before the row: a retirement committed after the row was read has bumped it by the time we
            // try to cache, and then the row is read again.
            var generation = Volatile.Read(ref _retirements);
            var stored = await _store.FindTokenAsync(tokenId);
            var nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
            if (stored is null)
            {
                return Remember(key, AuthFailure.UnknownToken, nowMs);
            }

            if (stored.RevokedAtMs is not null)
            {
                return Remember(key, AuthFailure.Revoked, nowMs);
            }

            if (stored.ExpiresAtMs is { } expires && nowMs >= expires)
            {
                return Remember(key, AuthFailure.Expired, nowMs);
            }

            if (!TokenScopeNames.TryParse(stored.Scope, out var scope) || ApiTokenFormat.IsWellFormed(token, out var marked) && marked != scope)
            {
                // The scope letter in the text must match the stored scope; a mismatch is a forged token.
                return Remember(key, AuthFailure.WrongSecret, nowMs);
            }

            if (!secretVerified)
            {
                if (await VerifySecretAsync(stored, token) is { } failure)
                {
                    if (failure != AuthFailure.WrongSecret)
                    {
                        return AuthResult.Fail(failure);
                    }

                    // A guess that cost an Argon2 run: counted for this id from this network.
                    _failures.RecordFailure(guesser.IdOnNetwork);
                    return Remember(key, failure, nowMs);
                }

                _failures.RecordSuccess(guesser.IdOnNetwork);
                secretVerified = true; // the secret never changes: a re-read needs no second Argon2
            }

            var principal = new Principal
            {
                TokenId = stored.Id,
                Scope = scope,
                OrgKey = stored.OrgKey,
                OrgId = stored.OrgId,
                ProjectKey = stored.ProjectKey,
                ProjectId = stored.ProjectId,
                ExpiresAtMs = stored.ExpiresAtMs,
            };
            lock (_retirement)
            {
                if (_retirements == generation)
                {
                    principal.Touch(nowMs);
                    _cache.Add(key, principal);
                    return AuthResult.Success(principal);
                }
            }

            // A revocation or deletion committed while this token was being verified: it may be this token's.
        }
    }

    /// <summary>Argon2id in the bounded pool; null when the secret matches.</summary>
    private async ValueTask<AuthFailure?> VerifySecretAsync(StoredToken stored, string token)
    {
        if (!await _hashSlots.TryEnterAsync())
        {
            return AuthFailure.Overloaded;
        }

        try
        {
            Interlocked.Increment(ref _hashVerifications);
            using (_metrics.Argon2Verifications.NewTimer())
            {
                if (!_hasher.Verify(stored.SecretHash, ApiTokenFormat.SecretOf(token)))
                {
                    return AuthFailure.WrongSecret;
                }
            }
        }
        finally
        {
            _hashSlots.Exit();
        }

        if (_hasher.NeedsRehash(stored.SecretHash))
        {
            _ = RehashAsync(stored, token); // not awaited: the caller's request never waits for this write
        }

        return null;
    }

    /// <summary>
    /// Stores a hash made with older parameters again with today's, once, so the token's next cold use is cheap.
    /// Outside the hash pool and best effort: a busy database costs the rehash, never the caller's request.
    /// </summary>
    private async Task RehashAsync(StoredToken stored, string token)
    {
        try
        {
            await _store.ReplaceSecretHashAsync(stored.Id, stored.SecretHash, _hasher.Hash(ApiTokenFormat.SecretOf(token)));
        }
        catch (Exception e) when (e is System.Data.Common.DbException or IOException or InvalidOperationException)
        {
            // Verified with the old hash this time (or the writer is stopping); the next cold use tries again.
        }
    }

    /// <summary>Who is guessing: the token id, and the key its wrong secrets are counted under (id and client network).</summary>
    private readonly record struct Guesser(string TokenId, string IdOnNetwork);

    /// <summary>
    /// Caches a failure for this exact token text briefly, so replaying one bad token costs no database read
    /// and no Argon2. Keyed by the whole token, not the id, so a stranger guessing secrets for a known id can
    /// never lock the real holder out.
    /// </summary>
    private AuthResult Remember(UInt128 key, AuthFailure failure, long nowMs)
    {
        if (_negative.Count >= MaxNegativeEntries)
        {
            _negative.Clear();
        }

        _negative[key] = (failure, nowMs + (long)s_negativeTtl.TotalMilliseconds);
        return AuthResult.Fail(failure);
    }

    private static ValueTask<AuthResult> Failed(AuthFailure failure) => new(AuthResult.Fail(failure));

    private static bool TryGetBearer(StringValues authorization, out ReadOnlySpan<char> token)
    {
        token = default;
        if (authorization.Count != 1)
        {
            return false;
        }

        ReadOnlySpan<char> value = authorization[0];
        const string Scheme = "Bearer ";
        if (value.Length <= Scheme.Length || !value.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        token = value[Scheme.Length..].Trim(' ');
        return true;
    }
}
