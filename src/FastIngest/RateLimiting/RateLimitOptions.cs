namespace FastIngest.RateLimiting;

/// <summary>
/// Permits per credential per sliding window. Defaults suit CI fleets: ingest generous (one project token is
/// shared by every job of a pipeline), management tight. Zero disables a policy.
/// </summary>
public sealed record RateLimitOptions
{
    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(1);

    public int IngestPerWindow { get; init; } = 60_000;

    public int ReadPerWindow { get; init; } = 6_000;

    public int ManagementPerWindow { get; init; } = 120;

    public int ConfirmPerWindow { get; init; } = 30;

    /// <summary>
    /// Wrong secrets for one existing token id within <see cref="Window"/> (each cost an Argon2 run) before that
    /// id's uncached attempts are blocked.
    /// </summary>
    public int AuthFailuresBeforeBlock { get; init; } = 10;

    public TimeSpan FirstBlock { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxBlock { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Token ids tracked at most; the least recently seen are evicted beyond it.</summary>
    public int MaxTrackedTokenIds { get; init; } = 10_000;

    public int PermitsFor(RateLimitPolicy policy) => policy switch
    {
        RateLimitPolicy.Ingest => IngestPerWindow,
        RateLimitPolicy.Read => ReadPerWindow,
        RateLimitPolicy.Management => ManagementPerWindow,
        _ => ConfirmPerWindow,
    };
}
