using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace FastIngest.Auth;

/// <summary>
/// Verified principals keyed by a seeded XxHash128 of the whole token text, never the token itself: a memory
/// dump shows no usable credential. Entries exist only for tokens that passed Argon2, so an attacker cannot
/// fill it; it is still capped.
/// </summary>
public sealed class TokenCache
{
    private readonly long _seed = BitConverter.ToInt64(RandomNumberGenerator.GetBytes(8));
    private readonly ConcurrentDictionary<UInt128, Principal> _entries = new();
    private readonly int _capacity;
    private int _evicting;

    public TokenCache()
        : this(100_000)
    {
    }

    internal TokenCache(int capacity) => _capacity = capacity;

    public int Count => _entries.Count;

    public UInt128 KeyOf(ReadOnlySpan<char> token) => XxHash128.HashToUInt128(MemoryMarshal.AsBytes(token), _seed);

    public bool TryGet(UInt128 key, out Principal principal) => _entries.TryGetValue(key, out principal!);

    public void Add(UInt128 key, Principal principal)
    {
        if (_entries.Count >= _capacity)
        {
            EvictLeastRecentlyUsed();
        }

        _entries[key] = principal;
    }

    /// <summary>
    /// Verified tokens only get here, so a full cache is a huge legitimate fleet. Dropping everything (as this
    /// once did) sent the whole fleet back through Argon2 at once; dropping the tenth least recently used costs
    /// only those tokens a re-verification, and runs once per tenth of the capacity.
    /// </summary>
    private void EvictLeastRecentlyUsed()
    {
        if (Interlocked.Exchange(ref _evicting, 1) != 0)
        {
            return;
        }

        try
        {
            var excess = _entries.Count - (_capacity - (_capacity / 10));
            foreach (var (key, _) in _entries.OrderBy(static e => e.Value.LastUsedMs).Take(excess).ToList())
            {
                _entries.TryRemove(key, out _);
            }
        }
        finally
        {
            Volatile.Write(ref _evicting, 0);
        }
    }

    public void Remove(UInt128 key) => _entries.TryRemove(key, out _);

    /// <summary>
    /// Drops every matching entry and marks it retired, so a request already holding it can tell (revocation,
    /// deletion). O(entries), which is fine: revocations are rare.
    /// </summary>
    public void RemoveWhere(Func<Principal, bool> match)
    {
        foreach (var (key, principal) in _entries)
        {
            if (match(principal))
            {
                principal.Retire();
                _entries.TryRemove(key, out _);
            }
        }
    }

    public IEnumerable<Principal> Principals => _entries.Values;
}
