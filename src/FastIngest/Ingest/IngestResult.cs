using FastIngest.Storage;

namespace FastIngest.Ingest;

/// <summary>What the writer tells a waiting request: committed (with the outcome) or not stored at all.</summary>
public readonly record struct IngestResult(bool Committed, RunWriteOutcome Outcome)
{
    public static IngestResult Stored(RunWriteOutcome outcome) => new(true, outcome);

    public static readonly IngestResult NotStored = new(false, default);
}
