using System.Security.Cryptography;
using System.Text;
using FastIngest.Storage;

namespace FastIngest.Destructive;

/// <summary>
/// Issues and spends one-time confirm tokens. A token is 256 random bits, shown once, stored only as its
/// SHA-256 (a high-entropy secret needs no slow hash), bound to action + target + the credential that asked,
/// valid for five minutes, and kept in the database so it survives a restart.
/// </summary>
public sealed class ConfirmTokens
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
    public const string HeaderName = "X-Confirm-Token";
    private const string Prefix = "fic_";

    private readonly IConfirmTokenStore _store;
    private readonly TimeProvider _clock;

    public ConfirmTokens(IConfirmTokenStore store, TimeProvider clock)
    {
        _store = store;
        _clock = clock;
    }

    public async Task<(string Token, long ExpiresAtMs)> IssueAsync(string action, string target, string credentialId, string summary)
    {
        var token = Prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var expires = now + (long)Lifetime.TotalMilliseconds;
        await _store.InsertAsync(new ConfirmTokenRecord(Hash(token), action, target, credentialId, summary, now, expires));
        return (token, expires);
    }

    public Task<ConfirmOutcome> ConsumeAsync(string token, string action, string target, string credentialId) =>
        token.Length is < 8 or > 128
            ? Task.FromResult(ConfirmOutcome.Unknown)
            : _store.TryConsumeAsync(Hash(token), action, target, credentialId, _clock.GetUtcNow().ToUnixTimeMilliseconds());

    private static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}
