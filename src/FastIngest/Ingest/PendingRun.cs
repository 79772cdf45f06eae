using FastIngest.Storage;

namespace FastIngest.Ingest;

/// <summary>A parsed run waiting in the queue, and the promise its request awaits.</summary>
internal sealed class PendingRun : TaskCompletionSource<IngestResult>
{
    public PendingRun(RunRecord run)
        : base(TaskCreationOptions.RunContinuationsAsynchronously) => Run = run;

    public RunRecord Run { get; }
}
