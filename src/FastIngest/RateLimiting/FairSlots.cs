namespace FastIngest.RateLimiting;

/// <summary>
/// A fixed number of slots for expensive work, shared max-min fairly between tenants: one tenant holds at most
/// <see cref="TenantShare"/> of them, and a freed slot goes to the waiting tenant that holds the fewest right now
/// (the longest-waiting request among equals). However many tenants collude, a newcomer that holds nothing is
/// next in line for the first slot that frees up, so it waits for one piece of work to finish, not for a queue.
/// Waiting is bounded (10 s by default), after which the caller answers 503. Used for large uploads while they
/// are parsed and committed (<see cref="Ingest.UploadSlots"/>) and for reads that scan history
/// (<see cref="TestCases.HeavyReadSlots"/>).
/// </summary>
public abstract class FairSlots
{
    private static readonly TimeSpan s_defaultWait = TimeSpan.FromSeconds(10);
    private readonly Lock _gate = new();
    private readonly Dictionary<long, Tenant> _tenants = [];
    private readonly TimeProvider _clock;
    private readonly TimeSpan _wait;
    private readonly int _capacity;
    private int _free;
    private int _waiting;
    private long _arrivals;

    protected FairSlots(int capacity, int tenantShare, TimeProvider? clock = null, TimeSpan? wait = null)
    {
        _capacity = Math.Max(1, capacity);
        _free = _capacity;
        TenantShare = Math.Clamp(tenantShare, 1, _capacity);
        _clock = clock ?? TimeProvider.System;
        _wait = wait ?? s_defaultWait;
    }

    /// <summary>Slots one tenant may hold at once.</summary>
    public int TenantShare { get; }

    /// <summary>Slots held right now.</summary>
    public int InUse
    {
        get
        {
            lock (_gate)
            {
                return _capacity - _free;
            }
        }
    }

    /// <summary>Requests waiting for a slot right now.</summary>
    public int Waiting
    {
        get
        {
            lock (_gate)
            {
                return _waiting;
            }
        }
    }

    /// <summary>Slots the tenant holds right now.</summary>
    public int HeldBy(long tenantKey)
    {
        lock (_gate)
        {
            return _tenants.TryGetValue(tenantKey, out var tenant) ? tenant.Held : 0;
        }
    }

    /// <summary>
    /// A slot, or null when none came free within the wait or the client left (the caller answers 503). Dispose
    /// the lease as soon as the expensive part is done.
    /// </summary>
    public async Task<Lease?> TryEnterAsync(long tenantKey, CancellationToken aborted)
    {
        Waiter waiter;
        lock (_gate)
        {
            var tenant = Join(tenantKey);
            if (_free > 0 && tenant.Held < TenantShare)
            {
                // Any request still waiting is at its tenant's share (a free slot is handed on at once otherwise).
                Grant(tenant);
                return new Lease(this, tenant);
            }

            waiter = new Waiter(tenant, ++_arrivals);
            tenant.Queue.AddLast(waiter.Node);
            _waiting++;
        }

        try
        {
            await waiter.Granted.Task.WaitAsync(_wait, _clock, aborted);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            lock (_gate)
            {
                if (waiter.Granted.TrySetCanceled(CancellationToken.None))
                {
                    waiter.Tenant.Queue.Remove(waiter.Node);
                    _waiting--;
                    Leave(waiter.Tenant);
                    return null;
                }
            }

            // The slot was handed over just as the wait ran out: give it back so the next one gets it.
            new Lease(this, waiter.Tenant).Dispose();
            return null;
        }

        return new Lease(this, waiter.Tenant);
    }

    private Tenant Join(long tenantKey)
    {
        if (!_tenants.TryGetValue(tenantKey, out var tenant))
        {
            _tenants[tenantKey] = tenant = new Tenant(tenantKey);
        }

        tenant.Users++;
        return tenant;
    }

    private void Leave(Tenant tenant)
    {
        if (--tenant.Users == 0)
        {
            _tenants.Remove(tenant.Key);
        }
    }

    private void Grant(Tenant tenant)
    {
        _free--;
        tenant.Held++;
    }

    private void Release(Tenant tenant)
    {
        lock (_gate)
        {
            _free++;
            tenant.Held--;
            Leave(tenant);
            while (_free > 0 && NextWaiter() is { } next)
            {
                next.Tenant.Queue.RemoveFirst();
                _waiting--;
                next.Granted.TrySetResult(); // never cancelled yet: cancellation takes the same lock and dequeues
                Grant(next.Tenant);
            }
        }
    }

    /// <summary>The head of the queue of the tenant holding the fewest slots (under its share); oldest among equals.</summary>
    private Waiter? NextWaiter()
    {
        Waiter? best = null;
        foreach (var tenant in _tenants.Values)
        {
            if (tenant.Queue.First is not { } head || tenant.Held >= TenantShare)
            {
                continue;
            }

            var candidate = head.Value;
            if (best is null || tenant.Held < best.Tenant.Held || (tenant.Held == best.Tenant.Held && candidate.Arrival < best.Arrival))
            {
                best = candidate;
            }
        }

        return best;
    }

    /// <summary>One held slot; disposing it (once, however often called) hands the slot on.</summary>
    public sealed class Lease : IDisposable
    {
        private readonly FairSlots _owner;
        private readonly Tenant _tenant;
        private int _released;

        internal Lease(FairSlots owner, Tenant tenant)
        {
            _owner = owner;
            _tenant = tenant;
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                _owner.Release(_tenant);
            }
        }
    }

    /// <summary>A tenant's slots and queue, kept while any of its requests holds or waits for a slot.</summary>
    internal sealed class Tenant(long key)
    {
        public long Key { get; } = key;

        public int Held { get; set; }

        public int Users { get; set; }

        public LinkedList<Waiter> Queue { get; } = new();
    }

    internal sealed class Waiter
    {
        public Waiter(Tenant tenant, long arrival)
        {
            Tenant = tenant;
            Arrival = arrival;
            Node = new LinkedListNode<Waiter>(this);
        }

        public Tenant Tenant { get; }

        public long Arrival { get; }

        public LinkedListNode<Waiter> Node { get; }

        public TaskCompletionSource Granted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
