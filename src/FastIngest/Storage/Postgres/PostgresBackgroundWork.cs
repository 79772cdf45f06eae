using System.Diagnostics;
using FastIngest.Auth;

namespace FastIngest.Storage.Postgres;

/// <summary>
/// What a PostgreSQL node does in the background: it listens for credentials retired on any node (so a revoked
/// token stops working here within milliseconds), and folds runs into the per-test roll-ups once a second (any node
/// may; they take turns on an advisory lock), so a read rarely has anything left to fold.
/// </summary>
public sealed partial class PostgresBackgroundWork : BackgroundService
{
    private static readonly TimeSpan s_foldEvery = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_foldBudget = TimeSpan.FromMilliseconds(500);
    private readonly IRetirementFeed _feed;
    private readonly Authenticator _authenticator;
    private readonly PostgresTestRollups _rollups;
    private readonly ILogger<PostgresBackgroundWork> _logger;

    public PostgresBackgroundWork(IRetirementFeed feed, Authenticator authenticator, PostgresTestRollups rollups, ILogger<PostgresBackgroundWork> logger)
    {
        _feed = feed;
        _authenticator = authenticator;
        _rollups = rollups;
        _logger = logger;
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
                catch (Exception e) when (e is Npgsql.NpgsqlException or InvalidOperationException or IOException or TimeoutException)
                {
                    Log.FoldFailed(_logger, e); // derived data: the next tick (or a read) folds again
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 60, EventName = "test_fold_failed", Level = LogLevel.Warning,
            Message = "Folding runs into the per-test roll-ups failed; the next attempt folds them")]
        public static partial void FoldFailed(ILogger logger, Exception exception);
    }
}
