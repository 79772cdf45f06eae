namespace FastIngest.Auth;

/// <summary>
/// Hashes token secrets for storage and verifies them. <see cref="SecretHasher"/> (Argon2id) is the only
/// production implementation; the seam exists so tests can hold a verification at a chosen moment and replay
/// the races between a token's first use and its revocation deterministically.
/// </summary>
public interface ISecretHasher
{
    string Hash(ReadOnlySpan<char> secret);

    bool Verify(string encodedHash, ReadOnlySpan<char> secret);

    /// <summary>True when the hash was made with other parameters than <see cref="Hash"/> uses today.</summary>
    bool NeedsRehash(string encodedHash);
}
