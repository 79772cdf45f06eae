using System.Diagnostics;
using FastIngest.Auth;

namespace FastIngest.Storage.Postgres;

/// <summary>
/// What a PostgreSQL node does in the background: it listens for credentials retired on any node (so a revoked
/// token stops working here within milliseconds), and folds runs into the per-test roll-ups once a second (any node
/// may; they take turns on an advisory lock), so a read rarely has anything left to fold.
/// </summary>
public sealed class PostgresBackgroundWork : BackgroundService
{
    private static readonly TimeSpan s_foldEvery = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_foldBudget = TimeSpan.FromMilliseconds(500);
    private readonly IRetirementFeed _feed;
    private readonly Authenticator _authenticator;
    private readonly PostgresTestRollups _rollups;

    public PostgresBackgroundWork(IRetirementFeed feed, Authenticator authenticator, PostgresTestRollups rollups)
    {
        _feed = feed;
        _authenticator = authenticator;
        _rollups = rollups;
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(_feed.ListenAsync(_authenticator, stoppingToken), FoldLoopAsync(stoppingToken));

    private async Task FoldLoopAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(s_foldEvery);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    var started = Stopwatch.GetTimestamp();
                    while (await _rollups.PendingAsync(stoppingToken) && await _rollups.FoldAsync() > 0
                        && Stopwatch.GetElapsedTime(started) < s_foldBudget)
                    {
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    _rollups.LogFoldFailed(e); // whatever it was, the loop lives on: the next tick (or a read) folds again
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
