using FastIngest.Auth;

namespace FastIngest.Tests.Auth;

public sealed class TokenCacheTests
{
    [Fact]
    public void AFullCacheDropsItsLeastRecentlyUsedTenthNotEveryone()
    {
        var cache = new TokenCache(capacity: 1_000);
        for (var i = 0; i < 1_000; i++)
        {
            var principal = new Principal { TokenId = $"t{i}", Scope = TokenScope.Ingest };
            principal.Touch(1_000_000 + (i * 1_000L)); // t0 is the least recently used, t999 the most
            cache.Add(cache.KeyOf($"token-{i}"), principal);
        }

        cache.Add(cache.KeyOf("token-new"), new Principal { TokenId = "new", Scope = TokenScope.Ingest });

        Assert.InRange(cache.Count, 900, 1_000);
        Assert.True(cache.TryGet(cache.KeyOf("token-999"), out _), "the most recently used token was dropped");
        Assert.True(cache.TryGet(cache.KeyOf("token-new"), out _), "the token just added was dropped");
        Assert.False(cache.TryGet(cache.KeyOf("token-0"), out _), "the least recently used token was kept");
    }
}
