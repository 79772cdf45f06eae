namespace FastIngest.Auth;

/// <summary>Who a verified token speaks for. Cached in memory; holds no secret.</summary>
public sealed class Principal
{
    private long _lastUsedMs;
    private long _flushedMs;
    private volatile bool _retired;

    public required string TokenId { get; init; }

    public required TokenScope Scope { get; init; }

    public long? OrgKey { get; init; }

    public string? OrgId { get; init; }

    public long? ProjectKey { get; init; }

    public string? ProjectId { get; init; }

    public long? ExpiresAtMs { get; init; }

    public bool IsExpired(long nowMs) => ExpiresAtMs is { } expires && nowMs >= expires;

    /// <summary>
    /// True once the token was revoked or its project or org deleted. A request that authenticated before that
    /// (a long upload) checks it before it stores anything.
    /// </summary>
    public bool IsRetired => _retired;

    internal void Retire() => _retired = true;

    /// <summary>
    /// Records a use. Written at most once a second per token so that hot tokens do not bounce a cache line
    /// between cores; a background flusher persists it as <c>last_used_at</c>.
    /// </summary>
    public void Touch(long nowMs)
    {
        if (nowMs - Volatile.Read(ref _lastUsedMs) >= 1000)
        {
            Volatile.Write(ref _lastUsedMs, nowMs);
        }
    }

    /// <summary>When the token was last used (to the second), for the cache's eviction order.</summary>
    internal long LastUsedMs => Volatile.Read(ref _lastUsedMs);

    /// <summary>The last use not yet persisted, if any; <see cref="MarkFlushed"/> once it is.</summary>
    internal bool TryGetUnflushedUse(out long lastUsedMs)
    {
        lastUsedMs = Volatile.Read(ref _lastUsedMs);
        return lastUsedMs != 0 && lastUsedMs != Volatile.Read(ref _flushedMs);
    }

    internal void MarkFlushed(long lastUsedMs) => Volatile.Write(ref _flushedMs, lastUsedMs);

    /// <summary>
    /// The token's rate-limit budgets, one per policy, once attached: the same array for every principal of the token
    /// (a re-verified one, a dashboard session's), so taking a permit needs no look-up after the first.
    /// </summary>
    internal RateLimiting.SlidingWindowBudget[]? RateBudgets => Volatile.Read(ref _budgets);

    internal RateLimiting.SlidingWindowBudget[] AttachRateBudgets(RateLimiting.SlidingWindowBudget[] shared) =>
        Interlocked.CompareExchange(ref _budgets, shared, null) ?? shared;

    private RateLimiting.SlidingWindowBudget[]? _budgets;
}
