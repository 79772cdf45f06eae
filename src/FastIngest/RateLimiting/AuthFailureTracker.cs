using System.Collections.Concurrent;

namespace FastIngest.RateLimiting;

/// <summary>
/// Counts the guesses that cost real work: a wrong secret presented for a token id that exists (each one costs
/// an Argon2 verification), per token id, with exponentially growing blocks for that id. Nothing else counts:
/// malformed tokens, bad checksums and unknown ids are refused without Argon2, so they cost a guesser nothing to
/// send and us next to nothing to refuse, and counting them per address let one misconfigured job behind a NAT
/// lock out the whole fleet behind it. Only the id's own successful verification forgives it; another token's
/// success from the same address does not. A block stops only uncached attempts with that id: a holder whose
/// token is already verified keeps working. Memory is bounded: at most
/// <see cref="RateLimitOptions.MaxTrackedTokenIds"/> entries, the least recently seen evicted first.
/// </summary>
public sealed class AuthFailureTracker
{
    private readonly RateLimitOptions _options;
    private readonly TimeProvider _clock;
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private int _evicting;

    public AuthFailureTracker(RateLimitOptions options, TimeProvider clock)
    {
        _options = options;
        _clock = clock;
    }

    public int TrackedTokenIds => _entries.Count;

    /// <summary>Seconds left on this token id's block, or 0 when it may be verified.</summary>
    public int BlockedSeconds(string tokenId)
    {
        if (!_entries.TryGetValue(tokenId, out var entry))
        {
            return 0;
        }

        lock (entry)
        {
            var left = entry.BlockedUntil - _clock.GetUtcNow();
            return left > TimeSpan.Zero ? (int)Math.Ceiling(left.TotalSeconds) : 0;
        }
    }

    /// <summary>A wrong secret for an existing token id (an Argon2 verification that failed).</summary>
    public void RecordFailure(string tokenId)
    {
        var now = _clock.GetUtcNow();
        var entry = _entries.GetOrAdd(tokenId, static _ => new Entry());
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

        if (_entries.Count > _options.MaxTrackedTokenIds)
        {
            EvictOldest();
        }
    }

    /// <summary>The id's own successful verification, after its block has run out, forgives it completely.</summary>
    public void RecordSuccess(string tokenId)
    {
        if (_entries.TryGetValue(tokenId, out var entry))
        {
            lock (entry)
            {
                if (entry.BlockedUntil > _clock.GetUtcNow())
                {
                    return;
                }
            }

            _entries.TryRemove(tokenId, out _);
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
            var excess = _entries.Count - (_options.MaxTrackedTokenIds * 3 / 4);
            if (excess <= 0)
            {
                return;
            }

            foreach (var (tokenId, _) in _entries.OrderBy(static e => e.Value.LastSeen).Take(excess).ToList())
            {
                _entries.TryRemove(tokenId, out _);
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
