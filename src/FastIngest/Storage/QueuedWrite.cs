namespace FastIngest.Storage;

/// <summary>
/// A write other than an ingest batch (a management change, a token's last use, a roll-up fold, a purge chunk),
/// queued to the one owner of writes, which runs it on its own thread between ingest batches. A backend that needs
/// a single writer (SQLite) routes every write through <see cref="IStorageWriter"/>; the request that queued it awaits
/// <see cref="Task"/> without holding a thread or a lock.
/// </summary>
public abstract class QueuedWrite
{
    protected QueuedWrite(string name, bool durable)
    {
        Name = name;
        Durable = durable;
        Trace = Observability.BackgroundTrace.Capture();
    }

    /// <summary>The trace of the request that queued it: the owner runs it as a span of that trace.</summary>
    public System.Diagnostics.ActivityContext? Trace { get; }

    /// <summary>What the write is, for logs and metrics (never its parameters).</summary>
    public string Name { get; }

    /// <summary>
    /// Whether its answer waits for the next flush, like an ingest batch. Derived data (roll-up folds) is not: a
    /// fold lost to a power cut is folded again, so it answers as soon as it is committed.
    /// </summary>
    public bool Durable { get; }

    /// <summary>Runs the write on the owner's thread, in its own transaction; an exception means nothing was stored.</summary>
    public abstract void Execute();

    /// <summary>Answers the caller once the write is committed (and, for a durable one, flushed).</summary>
    public abstract void Succeed();

    public abstract void Fail(Exception exception);
}

/// <summary>A queued write with a result.</summary>
public sealed class QueuedWrite<T> : QueuedWrite
{
    private readonly Func<T> _work;
    private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private T? _result;

    public QueuedWrite(string name, bool durable, Func<T> work)
        : base(name, durable) => _work = work;

    public Task<T> Task => _completion.Task;

    public override void Execute() => _result = _work();

    public override void Succeed() => _completion.TrySetResult(_result!);

    public override void Fail(Exception exception) => _completion.TrySetException(exception);
}

/// <summary>The one owner of writes: takes a queued write, or refuses once it has stopped.</summary>
public interface IStorageWriter
{
    /// <summary>False once the writer has stopped (the process is shutting down).</summary>
    bool TryEnqueue(QueuedWrite write);
}
