using System.Diagnostics;
using System.Threading.Channels;
using FastIngest.Configuration;
using FastIngest.Observability;
using FastIngest.Storage;

namespace FastIngest.Ingest;

/// <summary>
/// Group commit: requests publish runs into a bounded channel; one writer drains whatever is there (up to the
/// batch size) into a single durable transaction and only then completes each request. A full queue refuses
/// at once (the caller answers 503), so no request waits without bound. On shutdown the channel is completed
/// and drained: everything accepted gets a real answer.
/// </summary>
public sealed class RunBatchWriter : IAsyncDisposable
{
    private readonly Channel<PendingRun> _channel;
    private readonly IRunBatchStore _store;
    private readonly ServerMetrics _metrics;
    private readonly ILogger<RunBatchWriter> _logger;
    private readonly int _maxBatch;
    private readonly Task _writer;

    public RunBatchWriter(IRunBatchStore store, ServerOptions options, ServerMetrics metrics, ILogger<RunBatchWriter> logger)
    {
        _store = store;
        _metrics = metrics;
        _logger = logger;
        _maxBatch = options.MaxBatchSize;
        _channel = Channel.CreateBounded<PendingRun>(new BoundedChannelOptions(options.RunBatchWriterCapacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full; nothing is dropped silently
        });
        _writer = Task.Factory.StartNew(WriteLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    /// <summary>
    /// Queues a run; false when the queue is full or closed. The returned task completes after the run's batch
    /// committed (or failed).
    /// </summary>
    public bool TryPublish(RunRecord run, out Task<IngestResult> completion)
    {
        var pending = new PendingRun(run);
        completion = pending.Task;
        if (!_channel.Writer.TryWrite(pending))
        {
            return false;
        }

        _metrics.RunBatchWriterDepth.Inc();
        return true;
    }

    /// <summary>Stops accepting, commits everything queued, answers every waiter, then returns.</summary>
    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        await _writer;
        _store.Dispose();
    }

    private async Task WriteLoop()
    {
        var batch = new PendingRun[_maxBatch];
        var runs = new RunRecord[_maxBatch];
        var outcomes = new RunWriteOutcome[_maxBatch];
        var reader = _channel.Reader;
        while (await reader.WaitToReadAsync())
        {
            var count = 0;
            while (count < _maxBatch && reader.TryRead(out var pending))
            {
                batch[count] = pending;
                runs[count] = pending.Run;
                count++;
            }

            _metrics.RunBatchWriterDepth.Dec(count);
            CommitAndAnswer(batch.AsSpan(0, count), runs.AsSpan(0, count), outcomes.AsSpan(0, count));
            Array.Clear(batch, 0, count);
            Array.Clear(runs, 0, count);
        }
    }

    private void CommitAndAnswer(Span<PendingRun> batch, ReadOnlySpan<RunRecord> runs, Span<RunWriteOutcome> outcomes)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            _store.Commit(runs, outcomes);
        }
        catch (Exception e)
        {
            // Nothing of this batch is durable: every waiter learns so, and the next batch starts afresh.
            _metrics.IngestCommitFailures.Inc();
            Log.BatchCommitFailed(_logger, batch.Length, e);
            foreach (var pending in batch)
            {
                pending.TrySetResult(IngestResult.NotStored);
            }

            return;
        }

        _metrics.IngestCommitDuration.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        _metrics.IngestBatchSize.Observe(batch.Length);
        for (var i = 0; i < batch.Length; i++)
        {
            batch[i].TrySetResult(IngestResult.Stored(outcomes[i]));
        }
    }
}
