using FastIngest.Auth;

namespace FastIngest.Tests.Auth;

public sealed class SecretHasherTests
{
    [Fact]
    public void HashIsArgon2idWithTheParametersForHighEntropySecretsAndVerifiesOnlyTheSameSecret()
    {
        var hash = new SecretHasher().Hash("correct-secret");

        Assert.StartsWith("$argon2id$v=19$m=1024,t=1,p=1$", hash, StringComparison.Ordinal);
        Assert.False(new SecretHasher().NeedsRehash(hash));
        Assert.True(new SecretHasher().Verify(hash, "correct-secret"));
        Assert.False(new SecretHasher().Verify(hash, "correct-secreT"));
    }

    [Fact]
    public void AHashWithOlderParametersStillVerifiesAndAsksForARehash()
    {
        var old = new SecretHasher(19 * 1024, 2).Hash("correct-secret");

        Assert.True(new SecretHasher().Verify(old, "correct-secret"));
        Assert.True(new SecretHasher().NeedsRehash(old));
    }

    [Fact]
    public void TheSameSecretHashesDifferentlyEachTime() =>
        Assert.NotEqual(new SecretHasher().Hash("same"), new SecretHasher().Hash("same"));
}
