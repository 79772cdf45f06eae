using System.Security.Cryptography;
using System.Text;
using Isopoh.Cryptography.Argon2;

namespace FastIngest.Auth;

/// <summary>
/// Argon2id at OWASP's minimum for Argon2id (m=19 MiB, t=2, p=1): about 90 ms per call on our machines.
/// WARNING: never call this on the request hot path except through <see cref="Authenticator"/>'s bounded pool.
/// </summary>
public sealed class SecretHasher : ISecretHasher
{
    public const int MemoryCostKiB = 19 * 1024;
    public const int TimeCost = 2;
    public const int Lanes = 1;
    private readonly int _memoryCostKiB;
    private readonly int _timeCost;

    public SecretHasher()
        : this(MemoryCostKiB, TimeCost)
    {
    }

    /// <summary>Other costs are for tests only; verification always uses the cost stored in the hash.</summary>
    internal SecretHasher(int memoryCostKiB, int timeCost)
    {
        _memoryCostKiB = memoryCostKiB;
        _timeCost = timeCost;
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
}
