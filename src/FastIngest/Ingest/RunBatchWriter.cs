using System.Diagnostics;
using System.Threading.Channels;
using FastIngest.Configuration;
using FastIngest.Observability;
using FastIngest.Storage;

namespace FastIngest.Ingest;

/// <summary>
/// The one owner of writes, with group commit in two stages. Requests publish runs into a bounded channel; the
/// write loop drains whatever is there (up to the batch size) into one transaction; the sync loop makes every
/// batch committed so far durable with one flush and only then answers their requests. A full queue refuses at once
/// (the caller answers 503), so no request waits without bound.
/// <para>
/// Every other write (management, confirm tokens, last-used times, roll-up folds, purge chunks) is a
/// <see cref="QueuedWrite"/> on a second lane that the same loop runs one at a time between ingest batches: ingest
/// first, and no write ever waits on a lock, because no two writes ever run at once. A durable one is answered with
/// the flush after it, like a batch. On shutdown both lanes are completed and drained: everything accepted gets a
/// real answer.
/// </para>
/// <para>
/// While the disk flushes batch N, runs that arrive wait in the queue and are committed as batch N+1 when the flush
/// ends (<see cref="HoldWhileFlushingAsync"/>): they would wait for the next flush either way, and one transaction
/// for all of them writes each page they touch once. A full batch is committed at once, while the disk still
/// flushes. Answers go out from thread-pool work items, a chunk of requests each, whose responses are written
/// inline there: a batch wakes a few workers, not one per request.
/// </para>
/// </summary>
public sealed class RunBatchWriter : IAsyncDisposable, IStorageWriter
{
    private readonly Channel<PendingRun> _incoming;
    private readonly Channel<QueuedWrite> _writes;
    private readonly Channel<Committed> _committed;
    private readonly IRunBatchStore _store;
    private readonly ServerMetrics _metrics;
    private readonly ILogger<RunBatchWriter> _logger;
    private readonly int _maxBatch;

    /// <summary>Queued runs that make a full batch: the batch size, or less when the queue cannot hold that many.</summary>
    private readonly int _fullBatch;
    private readonly Task _writeLoop;
    private readonly Task _syncLoop;
    private int _disposed;
    /// <summary>
    /// Rows (runs plus test cases) after which a batch stops taking more runs, so one transaction with a big
    /// JUnit upload does not also carry hundreds of other runs' waits. A single run is never split.
    /// </summary>
    internal const int MaxRowsPerBatch = 20_000;
    private static readonly TimeSpan s_unhealthyAfterFailure = TimeSpan.FromSeconds(5);

    /// <summary>Put into the run queue to wake an idle writer for a queued write; skipped, never written.</summary>
    private static readonly PendingRun s_doorbell = new(null!);
    private int _bellPending;
    private long _lastFailureTimestamp;

    /// <summary>Batches and durable writes handed to the sync loop and not yet flushed.</summary>
    private int _unflushed;

    /// <summary>Runs published and not yet taken by the write loop.</summary>
    private int _queued;

    /// <summary>Their rows (a run and its test cases): a batch is also full at <see cref="MaxRowsPerBatch"/>.</summary>
    private int _queuedRows;

    /// <summary>1 once shutdown began: the write loop no longer holds, it drains.</summary>
    private int _stopping;

    /// <summary>Wakes a holding write loop: released after each flush, when a full batch or a queued write waits, and at shutdown.</summary>
    private readonly SemaphoreSlim _wake = new(0, 1);

    /// <summary>1 while a release of <see cref="_wake"/> is pending, so the semaphore never counts past one.</summary>
    private int _wakePending;

    /// <summary>
    /// Requests answered per thread-pool work item: few enough that a big batch is still answered by several cores
    /// at once, many enough that a batch does not queue (and wake a worker for) every request.
    /// </summary>
    private const int AnswerChunk = 16;

    public RunBatchWriter(IRunBatchStore store, ServerOptions options, ServerMetrics metrics, ILogger<RunBatchWriter> logger)
    {
        _store = store;
        _metrics = metrics;
        _logger = logger;
        _maxBatch = options.MaxBatchSize;
        _fullBatch = Math.Max(1, Math.Min(_maxBatch, options.IngestQueueCapacity - 1)); // a doorbell may take a place
        _incoming = Channel.CreateBounded<PendingRun>(new BoundedChannelOptions(options.IngestQueueCapacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full; nothing is dropped silently
        });
        _writes = Channel.CreateUnbounded<QueuedWrite>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
        _committed = Channel.CreateUnbounded<Committed>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        _writeLoop = Task.Run(WriteLoop);
        _syncLoop = Task.Run(SyncLoop);
    }

    /// <summary>
    /// False for a few seconds after a batch failed to commit or sync, and until a later batch succeeds: long
    /// enough for a load balancer to steer away, short enough that traffic comes back to prove recovery.
    /// </summary>
    public bool IsHealthy
    {
        get
        {
            var failedAt = Interlocked.Read(ref _lastFailureTimestamp);
            return failedAt == 0 || Stopwatch.GetElapsedTime(failedAt) > s_unhealthyAfterFailure;
        }
    }

    /// <summary>
    /// Queues a run; false when the queue is full or closed. The returned task completes once the run's batch
    /// is durable, or failed.
    /// </summary>
    public bool TryPublish(RunRecord run, out Task<IngestResult> completion)
    {
        var pending = new PendingRun(run);
        completion = pending.Task;
        if (!_incoming.Writer.TryWrite(pending))
        {
            return false;
        }

        _metrics.IngestQueueDepth.Inc();
        var rows = RowsOf(run);
        var queuedRows = Interlocked.Add(ref _queuedRows, rows);
        if (Interlocked.Increment(ref _queued) == _fullBatch || (queuedRows >= MaxRowsPerBatch && queuedRows - rows < MaxRowsPerBatch))
        {
            WakeWriter(); // a full batch waits: a holding write loop commits it while the disk flushes
        }

        return true;
    }

    public bool TryEnqueue(QueuedWrite write)
    {
        if (!_writes.Writer.TryWrite(write))
        {
            return false;
        }

        _metrics.QueuedWrites.Inc();
        RingDoorbell();
        WakeWriter(); // a write waits: a holding write loop commits what it holds and runs it, without waiting for the flush
        return true;
    }

    /// <summary>
    /// Wakes an idle writer for a queued write, with at most one bell in the run queue at a time (each would take a
    /// place meant for a run). A full run queue refuses the bell, but then the writer is busy and takes the write
    /// after its batch; a completed one means shutdown, which drains the write lane at the end.
    /// </summary>
    private void RingDoorbell()
    {
        if (Interlocked.Exchange(ref _bellPending, 1) == 0 && !_incoming.Writer.TryWrite(s_doorbell))
        {
            Volatile.Write(ref _bellPending, 0);
        }
    }

    /// <summary>Stops accepting, commits and syncs everything queued, answers every waiter, then returns.</summary>
    public async ValueTask DisposeAsync()
    {
        _writes.Writer.TryComplete(); // first: once the run queue is drained, the write lane holds all there will be
        _incoming.Writer.TryComplete();
        Interlocked.Exchange(ref _stopping, 1);
        WakeWriter();
        await _writeLoop;
        await _syncLoop;
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _store.Dispose();
        }
    }

    private async Task WriteLoop()
    {
        var runs = new RunRecord[_maxBatch];
        var outcomes = new RunWriteOutcome[_maxBatch];
        var reader = _incoming.Reader;
        var writes = _writes.Reader;
        var scratch = new List<PendingRun>(_maxBatch);
        var queueWait = _metrics.IngestStageDuration.WithLabels("queue_wait");
        try
        {
            // Idle, the loop waits on the run queue alone (no allocation); a queued write rings the doorbell there.
            while (await reader.WaitToReadAsync())
            {
                await HoldWhileFlushingAsync();
                var rows = 0;
                while (scratch.Count < _maxBatch && rows < MaxRowsPerBatch && reader.TryRead(out var pending))
                {
                    if (ReferenceEquals(pending, s_doorbell))
                    {
                        Volatile.Write(ref _bellPending, 0); // read before the write lane is looked at below
                        continue;
                    }

                    runs[scratch.Count] = pending.Run;
                    scratch.Add(pending);
                    queueWait.Observe(Stopwatch.GetElapsedTime(pending.QueuedAt).TotalSeconds);
                    rows += RowsOf(pending.Run);
                }

                if (scratch.Count > 0)
                {
                    Interlocked.Add(ref _queued, -scratch.Count);
                    Interlocked.Add(ref _queuedRows, -rows);
                    _metrics.IngestQueueDepth.Dec(scratch.Count);
                    var batch = scratch.ToArray();
                    scratch.Clear();
                    if (await CommitAsync(batch, runs.AsMemory(0, batch.Length), outcomes.AsMemory(0, batch.Length)))
                    {
                        HandToSyncLoop(new Committed(batch, null));
                    }

                    Array.Clear(runs, 0, batch.Length);
                }

                // Then one other write, so a queue of them never holds ingest back by more than one at a time. If
                // more are waiting, ring again: the loop comes back for the next one after the next batch.
                if (writes.TryRead(out var write))
                {
                    Execute(write);
                    if (writes.TryPeek(out _))
                    {
                        RingDoorbell();
                    }
                }
            }

            // The run queue is completed and drained; the write lane was completed first, so what is left is final.
            while (writes.TryRead(out var write))
            {
                Execute(write);
            }
        }
        finally
        {
            _committed.Writer.TryComplete();
        }
    }

    private void Execute(QueuedWrite write)
    {
        _metrics.QueuedWrites.Dec();
        var started = Stopwatch.GetTimestamp();
        // Its log lines (and any it causes) carry the trace of the request that queued it.
        using var span = write.Trace is { } trace ? Observability.BackgroundTrace.Start("fastingest.write." + write.Name, trace) : null;
        try
        {
            write.Execute();
        }
        catch (Exception e)
        {
            write.Fail(e); // its own transaction rolled back; the caller decides what it means
            return;
        }
        finally
        {
            _metrics.QueuedWriteDuration.WithLabels(write.Name).Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        }

        if (write.Durable)
        {
            HandToSyncLoop(new Committed(null, write));
        }
        else
        {
            write.Succeed();
        }
    }

    /// <summary>
    /// Waits while a flush is under way and less than a full batch is queued. Whatever arrives meanwhile would wait
    /// for the next flush anyway, and committing it in one transaction when the flush ends writes each page it touches
    /// once, where a commit per wake-up wrote the same index and table pages again each time (at 256 connections,
    /// about three commits of 13 WAL frames each per flush). A full batch (in runs or in rows) is committed at once,
    /// so under a flood, or with a slow disk, the next flush's batches are still written while the disk flushes. A
    /// store without a flush of its own (PostgreSQL, or SQLite at <c>--durability normal</c>) never holds; neither
    /// does a loop with a queued write waiting (its own flush would otherwise come one at a time), nor one shutting
    /// down.
    /// </summary>
    private async ValueTask HoldWhileFlushingAsync()
    {
        if (!_store.FlushesSeparately)
        {
            return;
        }

        while (Volatile.Read(ref _unflushed) > 0
            && Volatile.Read(ref _queued) < _fullBatch
            && Volatile.Read(ref _queuedRows) < MaxRowsPerBatch
            && !_writes.Reader.TryPeek(out _)
            && Volatile.Read(ref _stopping) == 0)
        {
            await _wake.WaitAsync();
            // Cleared, with a full fence, before the condition is read again: a waker changes the condition before
            // it looks at the flag, so one that saw the flag still set is seen by the reads below, and one after
            // this line releases the semaphore again.
            Interlocked.Exchange(ref _wakePending, 0);
        }
    }

    private static int RowsOf(RunRecord run) => 1 + (run.Tests?.Count ?? 0);

    private void WakeWriter()
    {
        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            _wake.Release();
        }
    }

    private void HandToSyncLoop(Committed committed)
    {
        Interlocked.Increment(ref _unflushed); // before the hand-over, so the sync loop never counts it down first
        _committed.Writer.TryWrite(committed); // unbounded: the sync loop drains it with each flush
    }

    private async ValueTask<bool> CommitAsync(PendingRun[] batch, ReadOnlyMemory<RunRecord> runs, Memory<RunWriteOutcome> outcomes)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await _store.CommitAsync(runs, outcomes);
        }
        catch (Exception e)
        {
            // Nothing of this batch is stored: every waiter learns so, and the next batch starts afresh.
            Fail(batch, e);
            return false;
        }

        Interlocked.Exchange(ref _lastFailureTimestamp, 0);
        _metrics.IngestCommitDuration.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        _metrics.IngestBatchSize.Observe(batch.Length);
        for (var i = 0; i < batch.Length; i++)
        {
            batch[i].Outcome = outcomes.Span[i];
        }

        return true;
    }

    private async Task SyncLoop()
    {
        var reader = _committed.Reader;
        var ready = new List<Committed>();
        while (await reader.WaitToReadAsync())
        {
            while (reader.TryRead(out var committed))
            {
                ready.Add(committed);
            }

            // One flush makes every batch and write committed before it durable.
            var started = Stopwatch.GetTimestamp();
            Exception? failure = null;
            try
            {
                await _store.MakeDurableAsync();
                _metrics.IngestSyncDuration.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
            }
            catch (Exception e)
            {
                failure = e;
            }

            // Flushed (or failed): a holding write loop may commit what queued meanwhile while these are answered.
            Interlocked.Add(ref _unflushed, -ready.Count);
            WakeWriter();

            if (failure is not null && !ready.Exists(static c => c.Batch is not null))
            {
                // Only other writes were waiting: they fail below; the writer is unhealthy all the same.
                Interlocked.Exchange(ref _lastFailureTimestamp, Stopwatch.GetTimestamp());
                _metrics.IngestCommitFailures.Inc();
                Log.BatchCommitFailed(_logger, 0, "", failure);
            }

            foreach (var (batch, write) in ready)
            {
                if (write is not null)
                {
                    if (failure is null)
                    {
                        write.Succeed();
                    }
                    else
                    {
                        write.Fail(failure);
                    }
                }
                else if (failure is null)
                {
                    Answer(batch!, stored: true);
                }
                else
                {
                    Fail(batch!, failure);
                }
            }

            ready.Clear();
        }
    }

    private void Fail(PendingRun[] batch, Exception error)
    {
        Interlocked.Exchange(ref _lastFailureTimestamp, Stopwatch.GetTimestamp());
        _metrics.IngestCommitFailures.Inc();
        // The trace ids of the requests it answers 503 (the first 20), so each client's trace shows why.
        var traces = string.Join(',', batch.Take(20).Select(static p => p.TraceId).Where(static t => t != default).Select(static t => t.ToHexString()));
        Log.BatchCommitFailed(_logger, batch.Length, traces, error);
        Answer(batch, stored: false);
    }

    /// <summary>
    /// Completes a batch's requests from the thread pool, <see cref="AnswerChunk"/> per work item. A
    /// <see cref="PendingRun"/> runs its continuation where it is completed, so each request writes its response
    /// inline in that work item, never on the write or sync loop.
    /// </summary>
    private static void Answer(PendingRun[] batch, bool stored)
    {
        for (var start = 0; start < batch.Length; start += AnswerChunk)
        {
            ThreadPool.UnsafeQueueUserWorkItem(new Answers(batch, start, Math.Min(AnswerChunk, batch.Length - start), stored), preferLocal: false);
        }
    }

    private sealed class Answers(PendingRun[] batch, int start, int count, bool stored) : IThreadPoolWorkItem
    {
        public void Execute()
        {
            for (var i = start; i < start + count; i++)
            {
                var pending = batch[i];
                pending.TrySetResult(stored ? IngestResult.Stored(pending.Outcome) : IngestResult.NotStored);
            }
        }
    }

    /// <summary>What the sync loop answers after its next flush: an ingest batch or one other write.</summary>
    private readonly record struct Committed(PendingRun[]? Batch, QueuedWrite? Write);
}
