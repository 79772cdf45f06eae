namespace FastIngest.Storage.Sqlite;

/// <summary>
/// Runs each write at once on the caller's thread, for a process with one thread of writes and no ingest writer:
/// the offline <c>seed</c> tool and storage tests. The server never uses it; its writes queue to the ingest writer.
/// </summary>
public sealed class InlineStorageWriter : IStorageWriter
{
    private readonly IRunBatchStore _store;

    public InlineStorageWriter(IRunBatchStore store) => _store = store;

    public bool TryEnqueue(QueuedWrite write)
    {
        try
        {
            write.Execute();
            if (write.Durable)
            {
                _store.MakeDurableAsync().AsTask().GetAwaiter().GetResult(); // SQLite's completes synchronously
            }
        }
        catch (Exception e)
        {
            write.Fail(e);
            return true;
        }

        write.Succeed();
        return true;
    }
}
