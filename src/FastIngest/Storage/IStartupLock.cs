namespace FastIngest.Storage;

/// <summary>
/// Serializes start-up work that must happen once however many nodes start together (the admin bootstrap). One
/// process owns an embedded database, so there it is free; on a shared database it is a lock every node takes.
/// </summary>
public interface IStartupLock
{
    Task<IAsyncDisposable> AcquireAsync(CancellationToken cancellation);
}

/// <summary>One process, one database: nothing to serialize against.</summary>
public sealed class ProcessStartupLock : IStartupLock
{
    public Task<IAsyncDisposable> AcquireAsync(CancellationToken cancellation) => Task.FromResult<IAsyncDisposable>(Released.Instance);

    private sealed class Released : IAsyncDisposable
    {
        public static readonly Released Instance = new();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
