using FastIngest.Configuration;

namespace FastIngest.Auth;

/// <summary>
/// Where every Argon2 run happens, verification and minting alike: at most one per core, so hashing can never
/// take every thread from the requests that need none (measured before: 40 concurrent token creations by one
/// tenant stalled another tenant's cached reads for 3 s). A caller waits up to
/// <see cref="ServerOptions.HashQueueTimeout"/> for a slot, then gets a 503.
/// </summary>
public sealed class HashSlots : IDisposable
{
    private readonly SemaphoreSlim _slots = new(Environment.ProcessorCount, Environment.ProcessorCount);
    private readonly TimeSpan _queueTimeout;

    public HashSlots(ServerOptions options) => _queueTimeout = options.HashQueueTimeout;

    /// <summary>True with a slot held (call <see cref="Exit"/>), false when none freed up in time.</summary>
    public Task<bool> TryEnterAsync() => _slots.WaitAsync(_queueTimeout);

    public void Exit() => _slots.Release();

    public void Dispose() => _slots.Dispose();
}
