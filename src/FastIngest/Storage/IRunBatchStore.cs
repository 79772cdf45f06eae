namespace FastIngest.Storage;

/// <summary>
/// Commits many runs as one transaction, then makes commits durable. The two steps are separate so one flush
/// covers every batch committed before it, and a full batch can be written while the previous one is being
/// flushed to disk (group commit). Used by a single writer loop and a single sync loop. An embedded backend completes both
/// synchronously; a networked one awaits its round trips.
/// </summary>
public interface IRunBatchStore : IDisposable
{
    /// <summary>
    /// Writes <paramref name="runs"/> in one transaction with insert-if-absent semantics and fills
    /// <paramref name="outcomes"/> with what happened to each, in order. On return the transaction is committed
    /// (visible to readers) but not necessarily durable: call <see cref="MakeDurableAsync"/> before acknowledging.
    /// A run whose project is gone or being deleted is <see cref="RunWriteOutcome.ProjectGone"/>; a run that fails
    /// on its own is <see cref="RunWriteOutcome.Failed"/>: neither affects the other runs of the batch.
    /// Throws if it could not commit (I/O, disk full), in which case nothing of the batch is stored.
    /// </summary>
    ValueTask CommitAsync(ReadOnlyMemory<RunRecord> runs, Memory<RunWriteOutcome> outcomes);

    /// <summary>
    /// Returns once every transaction committed before this call is durable as the configured durability
    /// promises. Throws if that cannot be guaranteed.
    /// </summary>
    ValueTask MakeDurableAsync();

    /// <summary>
    /// Whether <see cref="MakeDurableAsync"/> does real work apart from the commit (an fsync). The writer then lets
    /// runs that arrive during a flush wait and commits them together after it; without one it commits at once.
    /// </summary>
    bool FlushesSeparately { get; }
}
