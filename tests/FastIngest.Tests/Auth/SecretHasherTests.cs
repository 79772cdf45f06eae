using FastIngest.Auth;

namespace FastIngest.Tests.Auth;

public sealed class SecretHasherTests
{
    [Fact]
    public void HashIsArgon2idWithAtLeastOwaspParametersAndVerifiesOnlyTheSameSecret()
    {
        var hash = SecretHasher.Hash("correct-secret");

        Assert.StartsWith("$argon2id$v=19$m=19456,t=2,p=1$", hash, StringComparison.Ordinal);
        Assert.True(SecretHasher.Verify(hash, "correct-secret"));
        Assert.False(SecretHasher.Verify(hash, "correct-secreT"));
    }

    [Fact]
    public void TheSameSecretHashesDifferentlyEachTime() =>
        Assert.NotEqual(SecretHasher.Hash("same"), SecretHasher.Hash("same"));
}
