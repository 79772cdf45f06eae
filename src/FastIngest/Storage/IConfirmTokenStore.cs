namespace FastIngest.Storage;

/// <summary>One-time confirm tokens for destructive actions, stored hashed, consumed atomically.</summary>
public interface IConfirmTokenStore
{
    Task InsertAsync(ConfirmTokenRecord token);

    /// <summary>
    /// Spends the token in one atomic statement (<c>UPDATE ... SET used_at WHERE hash AND used_at IS NULL AND
    /// expires_at &gt; now AND action AND target AND credential</c>), so it can succeed once, ever. On failure,
    /// says why, without spending it.
    /// </summary>
    Task<ConfirmOutcome> TryConsumeAsync(string tokenHash, string action, string target, string credentialId, long nowMs);

    /// <summary>Deletes tokens that expired before <paramref name="beforeMs"/>; returns how many.</summary>
    Task<int> PurgeExpiredAsync(long beforeMs);
}

public sealed record ConfirmTokenRecord(string TokenHash, string Action, string Target, string CredentialId, string Summary, long CreatedAtMs, long ExpiresAtMs);

public enum ConfirmOutcome
{
    Consumed,
    Unknown,
    AlreadyUsed,
    Expired,

    /// <summary>The token exists but was issued for another action, target or credential.</summary>
    Mismatch,
}
