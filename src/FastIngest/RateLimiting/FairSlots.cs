namespace FastIngest.RateLimiting;

/// <summary>
/// A fixed number of slots for expensive work, shared fairly: one tenant holds at most <see cref="TenantShare"/>
/// of them, and its extra requests wait for one of its own slots, not for everyone's. Waiting is bounded (10 s in
/// all), after which the caller answers 503. Used for large uploads (<see cref="Ingest.UploadSlots"/>) and for
/// reads that scan history (<see cref="TestCases.HeavyReadSlots"/>).
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification =
    "A SemaphoreSlim whose AvailableWaitHandle is never touched holds nothing to dispose; disposing it at shutdown "
    + "while an upload still holds a lease would make that lease's release throw.")]
public abstract class FairSlots
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);
    private readonly SemaphoreSlim _slots;
    private readonly int _capacity;
    private readonly Dictionary<long, Share> _shares = [];
    private int _waiting;

    protected FairSlots(int capacity, int tenantShare)
    {
        _capacity = capacity;
        TenantShare = Math.Clamp(tenantShare, 1, capacity);
        _slots = new SemaphoreSlim(_capacity);
    }

    /// <summary>Slots one tenant may hold at once.</summary>
    public int TenantShare { get; }

    /// <summary>Slots held right now.</summary>
    public int InUse => _capacity - _slots.CurrentCount;

    /// <summary>Requests waiting for a slot right now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>
    /// Waits up to 10 s in all for one of the tenant's slots and one of the server's; null when none freed up or
    /// the client left (the caller answers 503). Dispose the lease as soon as the expensive part is done.
    /// </summary>
    public async Task<Lease?> TryEnterAsync(long tenantKey, CancellationToken aborted)
    {
        var share = Join(tenantKey);
        var started = TimeProvider.System.GetTimestamp();
        var tenantSlot = false;
        Interlocked.Increment(ref _waiting);
        try
        {
            if (await share.Slots.WaitAsync(s_wait, aborted))
            {
                tenantSlot = true;
                var left = s_wait - TimeProvider.System.GetElapsedTime(started);
                if (left > TimeSpan.Zero && await _slots.WaitAsync(left, aborted))
                {
                    return new Lease(this, tenantKey, share);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }

        if (tenantSlot)
        {
            share.Slots.Release();
        }

        Leave(tenantKey, share);
        return null;
    }

    private Share Join(long tenantKey)
    {
        lock (_shares)
        {
            if (!_shares.TryGetValue(tenantKey, out var share))
            {
                _shares[tenantKey] = share = new Share(TenantShare);
            }

            share.Users++;
            return share;
        }
    }

    private void Leave(long tenantKey, Share share)
    {
        lock (_shares)
        {
            if (--share.Users == 0)
            {
                _shares.Remove(tenantKey); // a SemaphoreSlim without a wait handle holds nothing to dispose
            }
        }
    }

    /// <summary>One held slot; disposing it (once, however often called) hands the slot on.</summary>
    public sealed class Lease : IDisposable
    {
        private readonly FairSlots _owner;
        private readonly long _tenantKey;
        private readonly Share _share;
        private int _released;

        internal Lease(FairSlots owner, long tenantKey, Share share)
        {
            _owner = owner;
            _tenantKey = tenantKey;
            _share = share;
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0)
            {
                return;
            }

            _owner._slots.Release();
            _share.Slots.Release();
            _owner.Leave(_tenantKey, _share);
        }
    }

    /// <summary>A tenant's slots, alive while any of its uploads holds or waits for one.</summary>
    internal sealed class Share(int slots)
    {
        public SemaphoreSlim Slots { get; } = new(slots);

        public int Users { get; set; }
    }
}
