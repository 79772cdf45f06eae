using System.Diagnostics;
using FastIngest.Observability;
using Microsoft.Data.Sqlite;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// Background storage upkeep, every 250 ms: folds new runs into the daily roll-ups (per-test ones once a second), then moves the WAL into
/// the main database file, both off the ingest path. SQLite's automatic checkpoint runs inside
/// whichever commit crosses the threshold, which stalls that batch (and every request waiting on it) for tens
/// of milliseconds; connections therefore open with <c>wal_autocheckpoint=0</c> and this loop runs PASSIVE
/// checkpoints, which never block the writer, on its own connection.
/// </summary>
public sealed class SqliteCheckpointer : BackgroundService
{
    private static readonly TimeSpan s_interval = TimeSpan.FromMilliseconds(250);

    /// <summary>Per-test folding per fold tick (once a second): a backlog takes at most this share of the writer's time.</summary>
    private static readonly TimeSpan s_foldBudget = TimeSpan.FromMilliseconds(400);

    /// <summary>
    /// The per-test fold once a second: each chunk rewrites the pages of every test and day it touches, so fewer,
    /// larger chunks write several times less WAL. The run roll-ups fold on every tick instead: a fold holds the
    /// writer for as long as it takes (about 0.4 µs per run), and a second's worth at 12,000 runs/s (5 ms) put every
    /// request that arrived meanwhile in the p99 of a paced load (load/compare.sh, #21: paced p99 7.3 ms with a fold
    /// a second, 4.9 ms with one per tick). They rewrite one row per project, day and branch.
    /// </summary>
    private const int TestFoldEveryTicks = 4;
    private readonly SqliteDatabase _database;
    private readonly ServerMetrics _metrics;
    private readonly ILogger<SqliteCheckpointer> _logger;
    private readonly SqliteRollupFolder _folder;

    public SqliteCheckpointer(SqliteDatabase database, SqliteRollupFolder folder, ServerMetrics metrics, ILogger<SqliteCheckpointer> logger)
    {
        _database = database;
        _folder = folder;
        _metrics = metrics;
        _logger = logger;
    }

    /// <summary>Runs one PASSIVE checkpoint; returns the WAL frames it copied.</summary>
    public long CheckpointOnce(SqliteConnection connection)
    {
        using var command = connection.Rent("PRAGMA wal_checkpoint(PASSIVE);");
        var started = Stopwatch.GetTimestamp();
        using var reader = command.ExecuteReader();
        reader.Read();
        var walFrames = reader.GetInt64(1);
        var copied = reader.GetInt64(2);
        if (walFrames > 0)
        {
            _metrics.StorageCheckpoints.Inc();
            _metrics.StorageCheckpointDuration.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        }

        return copied;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        SqliteDatabase.ReadLease? lease = null;
        long ticks = 0;
        using var timer = new PeriodicTimer(s_interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await _folder.FoldRunsAsync(); // roll-ups catch up off the ingest path (stats reads also fold first)
                    if (++ticks % TestFoldEveryTicks == 0)
                    {
                        // The per-test fold catches up a chunk at a time, for at most s_foldBudget, then the WAL is
                        // checkpointed: a backlog (an upgraded database's history) never grows the WAL without bound.
                        var started = Stopwatch.GetTimestamp();
                        while (Stopwatch.GetElapsedTime(started) < s_foldBudget && (await _folder.FoldTestsAsync(maxChunks: 1)).Full)
                        {
                        }
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A fold that cannot read a row, or a full disk: logged and retried on the next tick. The WAL is
                    // still checkpointed below, so a fold that keeps failing never grows the WAL without bound.
                    Log.FoldFailed(_logger, e.Message);
                }

                try
                {
                    lease ??= _database.Read();
                    CheckpointOnce(lease.Value.Connection);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A busy or failing disk is reported by the writer and /readyz; retry on the next tick: upkeep
                    // must not stop the server.
                    Log.CheckpointFailed(_logger, e.Message);
                    lease?.Connection.Close(); // a closed connection is not given back to be reused
                    lease?.Dispose();
                    lease = null;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            lease?.Dispose();
        }
    }
}
