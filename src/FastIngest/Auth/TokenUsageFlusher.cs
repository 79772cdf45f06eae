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

    public async Task FlushNowAsync()
    {
        var pending = new List<(Principal Principal, long LastUsed)>();
        foreach (var principal in _cache.Principals)
        {
            if (principal.TryGetUnflushedUse(out var lastUsed))
            {
                pending.Add((principal, lastUsed));
            }
        }

        await _store.RecordTokenUseAsync(pending.ConvertAll(static p => (p.Principal.TokenId, p.LastUsed)));
        // Marked only once stored: a failed write leaves them pending for the next tick.
        foreach (var (principal, lastUsed) in pending)
        {
            principal.MarkFlushed(lastUsed);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(s_interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await FlushAsync();
            }
        }
        catch (OperationCanceledException)
        {
        }

        await FlushAsync();
    }

    private async Task FlushAsync()
    {
        try
        {
            await FlushNowAsync();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Nothing was marked flushed, so the same uses are written on the next tick.
            Log.TokenUseFlushFailed(_logger, e);
        }
    }
}
