using FastIngest.Auth;

namespace FastIngest.Tests.Auth;

public sealed class SecretHasherTests
{
    [Fact]
    public void HashIsArgon2idWithAtLeastOwaspParametersAndVerifiesOnlyTheSameSecret()
    {
        var hash = new SecretHasher().Hash("correct-secret");

        Assert.StartsWith("$argon2id$v=19$m=19456,t=2,p=1$", hash, StringComparison.Ordinal);
        Assert.True(new SecretHasher().Verify(hash, "correct-secret"));
        Assert.False(new SecretHasher().Verify(hash, "correct-secreT"));
    }

    [Fact]
    public void TheSameSecretHashesDifferentlyEachTime() =>
        Assert.NotEqual(new SecretHasher().Hash("same"), new SecretHasher().Hash("same"));
}
