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

    /// <summary>Sessions kept at most; past it the oldest go (each costs a few hundred bytes).</summary>
    private const int MaxSessions = 100_000;

    private readonly ConcurrentDictionary<string, Session> _sessions = new(StringComparer.Ordinal);
    private readonly TimeProvider _clock;

    public DashboardSessions(TimeProvider clock) => _clock = clock;

    public Session Start(Principal principal)
    {
        if (_sessions.Count >= MaxSessions)
        {
            foreach (var old in _sessions.OrderBy(static s => s.Value.ExpiresAtMs).Take(MaxSessions / 10))
            {
                _sessions.TryRemove(old.Key, out _);
            }
        }

        var session = new Session(NewSecret(), principal, NewSecret(), (_clock.GetUtcNow() + Lifetime).ToUnixTimeMilliseconds());
        _sessions[session.Id] = session;
        return session;
    }

    /// <summary>The live session the cookie names, or null (unknown, expired, or its token retired).</summary>
    public Session? Find(HttpContext context)
    {
        if (context.Request.Cookies[CookieName] is not { Length: > 0 and <= 64 } id || !_sessions.TryGetValue(id, out var session))
        {
            return null;
        }

        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (session.ExpiresAtMs <= now || session.Principal.IsRetired || session.Principal.IsExpired(now))
        {
            _sessions.TryRemove(id, out _);
            return null;
        }

        return session;
    }

    public void End(Session session) => _sessions.TryRemove(session.Id, out _);

    public static string NewSecret() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Compares a form's anti-forgery field with the expected value in constant time.</summary>
    public static bool Matches(string? presented, string expected) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(
            System.Text.Encoding.UTF8.GetBytes(presented), System.Text.Encoding.UTF8.GetBytes(expected));
}

/// <summary>A signed-in browser: who it is (the token's principal) and the anti-forgery value its forms carry.</summary>
public sealed record Session(string Id, Principal Principal, string AntiForgery, long ExpiresAtMs);
