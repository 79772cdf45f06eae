using System.Collections.Concurrent;
using System.Security.Cryptography;
using FastIngest.Auth;

namespace FastIngest.Dashboard;

/// <summary>
/// Signed-in browsers. A session is a 256-bit random id in an HttpOnly, SameSite=Strict cookie (Secure over TLS),
/// mapped here to the principal of the token that signed in; the token itself is never kept, in the cookie or
/// here. A session ends at sign-out, after <see cref="Lifetime"/>, or as soon as its token is revoked or its
/// project or org deleted (the principal is marked retired then). Kept in memory: a restart signs everyone out.
/// </summary>
public sealed class DashboardSessions
{
    public const string CookieName = "fastingest_session";

    /// <summary>How long a session lasts after sign-in.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(12);

    /// <summary>Sessions kept at most; past it expired ones go first, then the oldest (each costs a few hundred bytes).</summary>
    private const int MaxSessions = 100_000;

    /// <summary>Sessions one token may hold; its next sign-in ends its oldest, never another token's.</summary>
    public const int MaxSessionsPerToken = 20;

    /// <summary>How often a session's token is read again (a revocation the principal missed shows within this).</summary>
    private const long RecheckMs = 5_000;

    private readonly ConcurrentDictionary<string, Session> _sessions = new(StringComparer.Ordinal);
    private readonly Lock _starting = new();
    private long _started; // under _starting
    private readonly TimeProvider _clock;
    private readonly Storage.ITenantStore _tenants;

    public DashboardSessions(TimeProvider clock, Storage.ITenantStore tenants)
    {
        _clock = clock;
        _tenants = tenants;
    }

    public Session Start(Principal principal)
    {
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_starting)
        {
            // Started order, not expiry: sign-ins within one millisecond share an expiry.
            var own = _sessions.Values.Where(s => s.Principal.TokenId == principal.TokenId).OrderBy(static s => s.Started).ToList();
            foreach (var old in own.Take(Math.Max(0, own.Count - MaxSessionsPerToken + 1)))
            {
                _sessions.TryRemove(old.Id, out _);
            }

            if (_sessions.Count >= MaxSessions)
            {
                foreach (var old in _sessions.Values.OrderBy(s => s.ExpiresAtMs > now).ThenBy(static s => s.ExpiresAtMs).Take(MaxSessions / 10).ToList())
                {
                    _sessions.TryRemove(old.Id, out _);
                }
            }

            var session = new Session(NewSecret(), principal, NewSecret(), now + (long)Lifetime.TotalMilliseconds) { CheckedAtMs = now, Started = ++_started };
            _sessions[session.Id] = session;
            return session;
        }
    }

    /// <summary>The live session the cookie names, or null (unknown, expired, or its token retired).</summary>
    public async ValueTask<Session?> FindAsync(HttpContext context)
    {
        if (context.Request.Cookies[CookieName] is not { Length: > 0 and <= 64 } id || !_sessions.TryGetValue(id, out var session))
        {
            return null;
        }

        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (session.ExpiresAtMs <= now || session.Principal.IsRetired || session.Principal.IsExpired(now) || !await StillValidAsync(session, now))
        {
            _sessions.TryRemove(id, out _);
            return null;
        }

        return session;
    }

    public void End(Session session) => _sessions.TryRemove(session.Id, out _);

    /// <summary>
    /// The principal is marked retired when its token is revoked, but only while the token cache holds it; every few
    /// seconds the token's row is read again, so a revocation always ends the session within <see cref="RecheckMs"/>.
    /// </summary>
    private async ValueTask<bool> StillValidAsync(Session session, long now)
    {
        if (now - session.CheckedAtMs < RecheckMs)
        {
            return true;
        }

        var token = await _tenants.FindTokenAsync(session.Principal.TokenId);
        if (token is null || token.RevokedAtMs is not null || (token.ExpiresAtMs is { } expires && expires <= now))
        {
            return false;
        }

        session.CheckedAtMs = now;
        return true;
    }

    public static string NewSecret() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Compares a form's anti-forgery field with the expected value in constant time.</summary>
    public static bool Matches(string? presented, string expected) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(
            System.Text.Encoding.UTF8.GetBytes(presented), System.Text.Encoding.UTF8.GetBytes(expected));
}

/// <summary>A signed-in browser: who it is (the token's principal) and the anti-forgery value its forms carry.</summary>
public sealed record Session(string Id, Principal Principal, string AntiForgery, long ExpiresAtMs)
{
    /// <summary>Which sign-in this was (1, 2, ...): orders a token's sessions where their expiries tie.</summary>
    public long Started { get; init; }

    private long _checkedAtMs;

    /// <summary>When the token's row was last read (see <see cref="DashboardSessions"/>).</summary>
    public long CheckedAtMs
    {
        get => Volatile.Read(ref _checkedAtMs);
        set => Volatile.Write(ref _checkedAtMs, value);
    }
}
