using FastIngest.Storage;

namespace FastIngest.Ingest;

/// <summary>
/// A parsed run waiting in the queue, and the promise its request awaits. Its continuation runs inline where it is
/// completed: <see cref="RunBatchWriter"/> completes it only from a thread-pool work item of its own, a chunk of
/// requests at a time, never from its write or sync loop.
/// </summary>
internal sealed class PendingRun : TaskCompletionSource<IngestResult>
{
    public PendingRun(RunRecord run)
        : base(TaskCreationOptions.None)
    {
        Run = run;
        QueuedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        TraceId = System.Diagnostics.Activity.Current?.TraceId ?? default;
    }

    /// <summary>The trace of the request that queued it (a struct: nothing allocated), for the batch's failure log.</summary>
    public System.Diagnostics.ActivityTraceId TraceId { get; }

    public RunRecord Run { get; }

    /// <summary>When it was queued (a <see cref="System.Diagnostics.Stopwatch"/> timestamp), for the queue-wait metric.</summary>
    public long QueuedAt { get; }

    /// <summary>Set by the writer when the batch commits; reported once the commit is durable.</summary>
    public RunWriteOutcome Outcome { get; set; }
}
