using System.Security.Cryptography;
using System.Text;
using Isopoh.Cryptography.Argon2;

namespace FastIngest.Auth;

/// <summary>
/// Argon2id sized for what it protects: 256-bit random secrets, not passwords. Password-grade cost (OWASP's
/// m=19 MiB, t=2: ~70-90 ms here) exists to slow an offline search of a small, human-chosen space; a 256-bit
/// secret has no such space (2^256 guesses at any speed is out of reach), which is why NIST SP 800-63B treats
/// high-entropy secrets apart from memorized ones and GitHub keeps only a SHA-256 of its tokens. What that cost
/// did buy was a cold restart of a fleet answering 503s (300 first uses at once: 210 x 503, 8 s). So the hash
/// stays Argon2id (a stolen database still yields nothing usable, and a weakened RNG would still meet a slow,
/// memory-hard function) at m=1 MiB, t=1, p=1: about 2 ms per verification here. Hashes made with other
/// parameters keep verifying (Argon2 reads them from the stored hash) and are rehashed on their next use.
/// WARNING: never call this on the request hot path except through <see cref="Authenticator"/>'s bounded pool.
/// </summary>
public sealed class SecretHasher : ISecretHasher
{
    public const int MemoryCostKiB = 1024;
    public const int TimeCost = 1;
    public const int Lanes = 1;
    private readonly int _memoryCostKiB;
    private readonly int _timeCost;
    private readonly string _parameters;

    public SecretHasher()
        : this(MemoryCostKiB, TimeCost)
    {
    }

    /// <summary>Other costs are for tests only; verification always uses the cost stored in the hash.</summary>
    internal SecretHasher(int memoryCostKiB, int timeCost)
    {
        _memoryCostKiB = memoryCostKiB;
        _timeCost = timeCost;
        _parameters = $"$argon2id$v=19$m={memoryCostKiB},t={timeCost},p={Lanes}$";
    }

    public string Hash(ReadOnlySpan<char> secret)
    {
        var config = new Argon2Config
        {
            Type = Argon2Type.HybridAddressing,
            Version = Argon2Version.Nineteen,
            TimeCost = _timeCost,
            MemoryCost = _memoryCostKiB,
            Lanes = Lanes,
            Threads = 1,
            HashLength = 32,
            Salt = RandomNumberGenerator.GetBytes(16),
            Password = Encoding.ASCII.GetBytes(secret.ToArray()),
        };
        return Argon2.Hash(config);
    }

    /// <summary>Recomputes the hash with the stored salt and parameters and compares in constant time.</summary>
    public bool Verify(string encodedHash, ReadOnlySpan<char> secret) =>
        Argon2.Verify(encodedHash, Encoding.ASCII.GetBytes(secret.ToArray()), 1);

    public bool NeedsRehash(string encodedHash) => !encodedHash.StartsWith(_parameters, StringComparison.Ordinal);
}
