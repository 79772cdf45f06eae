using FastIngest.Configuration;

namespace FastIngest.Ingest;

/// <summary>
/// Admission for large ingest requests: every JUnit upload and every JSON body over
/// <see cref="IngestEndpoint.SmallBodyBytes"/> (or of unknown length) holds a slot from before its body is read
/// until its run is committed. The memory large uploads can hold is then bounded by the slot count, whatever
/// the number of connections; small runs never wait here.
/// </summary>
public sealed class UploadSlots : IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);
    private readonly SemaphoreSlim _slots;
    private readonly int _capacity;

    public UploadSlots(ServerOptions options)
    {
        _capacity = options.UploadSlots;
        _slots = new SemaphoreSlim(_capacity);
    }

    /// <summary>Slots held right now.</summary>
    public int InUse => _capacity - _slots.CurrentCount;

    /// <summary>Waits up to 10 s for a slot; false when none freed up or the client left (the caller answers 503).</summary>
    public async Task<bool> TryEnterAsync(CancellationToken aborted)
    {
        try
        {
            return await _slots.WaitAsync(s_wait, aborted);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Exit() => _slots.Release();

    public void Dispose() => _slots.Dispose();
}
