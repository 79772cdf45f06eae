using FastIngest.Auth;

namespace FastIngest.Tests.Auth;

public sealed class ApiTokenFormatTests
{
    [Theory]
    [InlineData(TokenScope.Admin, "fia_")]
    [InlineData(TokenScope.Org, "fio_")]
    [InlineData(TokenScope.Ingest, "fii_")]
    [InlineData(TokenScope.Read, "fir_")]
    public void GeneratedTokenRoundTripsWithItsScopeAndId(TokenScope scope, string prefix)
    {
        var (token, id) = ApiTokenFormat.Generate(scope);

        Assert.StartsWith(prefix, token, StringComparison.Ordinal);
        Assert.Equal(ApiTokenFormat.Length, token.Length);
        Assert.Matches("^fi[aoir]_[0-9A-Za-z]{61}$", token);
        Assert.True(ApiTokenFormat.IsWellFormed(token, out var parsed));
        Assert.Equal(scope, parsed);
        Assert.Equal(id, ApiTokenFormat.IdOf(token).ToString());
    }

    [Fact]
    public void GeneratedTokensAreUnique()
    {
        var tokens = Enumerable.Range(0, 10_000).Select(_ => ApiTokenFormat.Generate(TokenScope.Ingest).Token).ToHashSet();
        Assert.Equal(10_000, tokens.Count);
    }

    [Fact]
    public void SecretCarriesAtLeast256BitsOfEntropy() =>
        Assert.True(ApiTokenFormat.SecretLength * Math.Log2(62) >= 256);

    [Fact]
    public void ChangingAnyCharacterOfAValidTokenMakesItMalformed()
    {
        var (token, _) = ApiTokenFormat.Generate(TokenScope.Ingest);
        for (var i = 0; i < token.Length; i++)
        {
            foreach (var replacement in new[] { '0', 'a', 'Z', '_', 'x' })
            {
                if (token[i] == replacement)
                {
                    continue;
                }

                var mutated = token[..i] + replacement + token[(i + 1)..];
                // A changed scope letter can still be a valid scope; the checksum must still catch it.
                Assert.False(ApiTokenFormat.IsWellFormed(mutated, out _), $"mutation at {i} to '{replacement}' was accepted: {mutated}");
            }
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("fii_")]
    [InlineData("Bearer fii_abc")]
    [InlineData("ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    public void ObviouslyWrongShapesAreMalformed(string text) => Assert.False(ApiTokenFormat.IsWellFormed(text, out _));

    [Fact]
    public void TruncatedAndExtendedTokensAreMalformed()
    {
        var (token, _) = ApiTokenFormat.Generate(TokenScope.Read);
        Assert.False(ApiTokenFormat.IsWellFormed(token[..^1], out _));
        Assert.False(ApiTokenFormat.IsWellFormed(token + "0", out _));
    }
}
