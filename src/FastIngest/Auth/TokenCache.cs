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
    private const int MaxEntries = 100_000;
    private readonly long _seed = BitConverter.ToInt64(RandomNumberGenerator.GetBytes(8));
    private readonly ConcurrentDictionary<UInt128, Principal> _entries = new();

    public int Count => _entries.Count;

    public UInt128 KeyOf(ReadOnlySpan<char> token) => XxHash128.HashToUInt128(MemoryMarshal.AsBytes(token), _seed);

    public bool TryGet(UInt128 key, out Principal principal) => _entries.TryGetValue(key, out principal!);

    public void Add(UInt128 key, Principal principal)
    {
        if (_entries.Count >= MaxEntries)
        {
            // Verified tokens only get here, so this is a huge legitimate fleet; start over rather than grow.
            _entries.Clear();
        }

        _entries[key] = principal;
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
