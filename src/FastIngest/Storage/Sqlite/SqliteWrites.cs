using Microsoft.Data.Sqlite;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// How every SQLite write other than an ingest batch happens: queued to the one writer (<see cref="IStorageWriter"/>),
/// run on its thread and its connection between batches, answered once committed (and flushed, when durable). No
/// request thread ever waits on a lock for a write; read connections are <c>query_only</c>, so nothing can bypass
/// this.
/// </summary>
public sealed class SqliteWrites
{
    private readonly IStorageWriter _queue;
    private readonly SqliteRunBatchStore _writer;

    public SqliteWrites(IStorageWriter queue, SqliteRunBatchStore writer)
    {
        _queue = queue;
        _writer = writer;
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the writer's connection. It runs in autocommit mode: work of more than one
    /// statement opens its own transaction (<c>BeginTransaction()</c>), so a failure leaves nothing behind.
    /// </summary>
    public Task<T> RunAsync<T>(string name, Func<SqliteConnection, T> work, bool durable = true)
    {
        var write = new QueuedWrite<T>(name, durable, () => work(_writer.Connection));
        return _queue.TryEnqueue(write)
            ? write.Task
            : Task.FromException<T>(new InvalidOperationException($"The writer has stopped; '{name}' was not written."));
    }

    public Task RunAsync(string name, Action<SqliteConnection> work, bool durable = true) =>
        RunAsync(name, connection =>
        {
            work(connection);
            return true;
        }, durable);
}
