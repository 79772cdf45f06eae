using FastIngest.Storage;

namespace FastIngest.Auth;

/// <summary>
/// Persists <c>last_used_at</c> every few seconds from the cached principals, so authentication itself never
/// writes to the database.
/// </summary>
public sealed class TokenUsageFlusher : BackgroundService
{
    private static readonly TimeSpan s_interval = TimeSpan.FromSeconds(5);
    private readonly TokenCache _cache;
    private readonly ITenantStore _store;
    private readonly ILogger<TokenUsageFlusher> _logger;

    public TokenUsageFlusher(TokenCache cache, ITenantStore store, ILogger<TokenUsageFlusher> logger)
    {
        _cache = cache;
        _store = store;
        _logger = logger;
    }

    public void FlushNow()
    {
        var uses = new List<(string, long)>();
        foreach (var principal in _cache.Principals)
        {
            if (principal.TryTakeUnflushedUse(out var lastUsed))
            {
                uses.Add((principal.TokenId, lastUsed));
            }
        }

        _store.RecordTokenUse(uses);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(s_interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                Flush();
            }
        }
        catch (OperationCanceledException)
        {
        }

        Flush();
    }

    private void Flush()
    {
        try
        {
            FlushNow();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Losing a last-used timestamp is harmless; it is retried on the next tick.
            _logger.LogWarning(e, "Could not record token last-used times");
        }
    }
}
