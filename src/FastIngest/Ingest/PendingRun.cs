using FastIngest.Storage;

namespace FastIngest.Ingest;

/// <summary>A parsed run waiting in the queue, and the promise its request awaits.</summary>
internal sealed class PendingRun : TaskCompletionSource<IngestResult>
{
    public PendingRun(RunRecord run)
        : base(TaskCreationOptions.RunContinuationsAsynchronously) => Run = run;

    public RunRecord Run { get; }

    /// <summary>Set by the writer when the batch commits; reported once the commit is durable.</summary>
    public RunWriteOutcome Outcome { get; set; }
}
