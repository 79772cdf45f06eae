using System.Diagnostics;
using FastIngest.Observability;

namespace FastIngest.Storage;

/// <summary>
/// Times storage calls (<see cref="TimedTenantStore"/> and its siblings): every call's duration goes into
/// <c>fastingest_storage_call_duration_seconds{call}</c>, and a call slower than the threshold writes one
/// <c>slow_storage_call</c> line with its name and duration (never its parameters: they can be tenant data). The
/// time is what the caller waited: for a write on SQLite that includes its turn at the writer and the flush.
/// </summary>
public sealed class StorageTimer
{
    private readonly ServerMetrics _metrics;
    private readonly ILogger _logger;
    private readonly double _slowSeconds;

    public StorageTimer(ServerMetrics metrics, ILoggerFactory loggers, TimeSpan slowAfter)
    {
        _metrics = metrics;
        _logger = loggers.CreateLogger("FastIngest.Storage");
        _slowSeconds = slowAfter.TotalSeconds;
    }

    public async ValueTask<T> TimeAsync<T>(string call, long started, ValueTask<T> pending)
    {
        try
        {
            return await pending;
        }
        finally
        {
            Record(call, started);
        }
    }

    public async Task<T> TimeAsync<T>(string call, long started, Task<T> pending)
    {
        try
        {
            return await pending;
        }
        finally
        {
            Record(call, started);
        }
    }

    public async Task TimeAsync(string call, long started, Task pending)
    {
        try
        {
            await pending;
        }
        finally
        {
            Record(call, started);
        }
    }

    /// <summary>Records a call that ended (or failed) now.</summary>
    public void Record(string call, long started)
    {
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        _metrics.StorageCallDuration.WithLabels(call).Observe(seconds);
        // A backup or a whole project's deletion is a job's work and long by nature: timed, never "slow".
        if (seconds >= _slowSeconds && call is not ("backup" or "delete_project"))
        {
            var ms = Math.Round(seconds * 1000, 1);
            Log.SlowStorageCall(_logger, call, ms);
        }
    }
}
