using System.Collections.Concurrent;
using System.Net;

namespace FastIngest.RateLimiting;

/// <summary>
/// Blocks client addresses that keep failing authentication, with exponentially growing blocks, so guessing
/// tokens costs the guesser time. A block only stops requests that would need the slow path (database read,
/// Argon2): tokens already verified and cached keep working, so a CI fleet behind one NAT address is not taken
/// down by one misconfigured job. Memory is bounded: at most <see cref="RateLimitOptions.MaxTrackedAddresses"/>
/// entries, the least recently seen evicted first.
/// </summary>
public sealed class AuthFailureTracker
{
    private readonly RateLimitOptions _options;
    private readonly TimeProvider _clock;
    private readonly ConcurrentDictionary<IPAddress, Entry> _entries = new();
    private int _evicting;

    public AuthFailureTracker(RateLimitOptions options, TimeProvider clock)
    {
        _options = options;
        _clock = clock;
    }

    public int TrackedAddresses => _entries.Count;

    /// <summary>Seconds left on this address's block, or 0 when it may try.</summary>
    public int BlockedSeconds(IPAddress? address)
    {
        if (address is null || !_entries.TryGetValue(address, out var entry))
        {
            return 0;
        }

        lock (entry)
        {
            var left = entry.BlockedUntil - _clock.GetUtcNow();
            return left > TimeSpan.Zero ? (int)Math.Ceiling(left.TotalSeconds) : 0;
        }
    }

    public void RecordFailure(IPAddress? address)
    {
        if (address is null)
        {
            return;
        }

        var now = _clock.GetUtcNow();
        var entry = _entries.GetOrAdd(address, static _ => new Entry());
        lock (entry)
        {
            entry.LastSeen = now;
            if (now - entry.WindowStart > _options.Window)
            {
                entry.WindowStart = now;
                entry.Failures = 0;
            }

            if (++entry.Failures >= _options.AuthFailuresBeforeBlock && entry.BlockedUntil <= now)
            {
                var block = TimeSpan.FromTicks(Math.Min(_options.MaxBlock.Ticks, _options.FirstBlock.Ticks << Math.Min(entry.Blocks, 30)));
                entry.Blocks++;
                entry.BlockedUntil = now + block;
                entry.Failures = 0;
            }
        }

        if (_entries.Count > _options.MaxTrackedAddresses)
        {
            EvictOldest();
        }
    }

    /// <summary>A success after the block has run out forgives the address completely.</summary>
    public void RecordSuccess(IPAddress? address)
    {
        if (address is not null && _entries.TryGetValue(address, out var entry))
        {
            lock (entry)
            {
                if (entry.BlockedUntil > _clock.GetUtcNow())
                {
                    return;
                }
            }

            _entries.TryRemove(address, out _);
        }
    }

    /// <summary>Drops the least recently seen quarter; one thread at a time, others carry on.</summary>
    private void EvictOldest()
    {
        if (Interlocked.Exchange(ref _evicting, 1) != 0)
        {
            return;
        }

        try
        {
            var excess = _entries.Count - (_options.MaxTrackedAddresses * 3 / 4);
            if (excess <= 0)
            {
                return;
            }

            foreach (var (address, _) in _entries.OrderBy(static e => e.Value.LastSeen).Take(excess).ToList())
            {
                _entries.TryRemove(address, out _);
            }
        }
        finally
        {
            Volatile.Write(ref _evicting, 0);
        }
    }

    private sealed class Entry
    {
        public DateTimeOffset WindowStart;
        public DateTimeOffset LastSeen;
        public DateTimeOffset BlockedUntil;
        public int Failures;
        public int Blocks;
    }
}
