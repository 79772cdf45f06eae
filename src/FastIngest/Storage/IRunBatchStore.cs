namespace FastIngest.Storage;

/// <summary>
/// Commits many runs as one durable transaction. Implementations are used by a single writer thread.
/// </summary>
public interface IRunBatchStore : IDisposable
{
    /// <summary>
    /// Writes <paramref name="runs"/> in one transaction with insert-if-absent semantics and fills
    /// <paramref name="outcomes"/> with what happened to each, in order. Returns only once the transaction is
    /// durably committed; throws if it was not, in which case nothing of the batch is stored.
    /// </summary>
    void Commit(ReadOnlySpan<RunRecord> runs, Span<RunWriteOutcome> outcomes);
}
