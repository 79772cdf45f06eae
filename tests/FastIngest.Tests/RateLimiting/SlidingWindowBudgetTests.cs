using System.Diagnostics;
using FastIngest.RateLimiting;

namespace FastIngest.Tests.RateLimiting;

/// <summary>A credential's budget: exact within a window, and permits come back a segment at a time, one window after they were spent.</summary>
public sealed class SlidingWindowBudgetTests
{
    private static readonly TimeSpan s_window = TimeSpan.FromMinutes(1);
    private static readonly long s_segment = (long)(s_window.TotalSeconds * Stopwatch.Frequency / SlidingWindowBudget.Segments);

    [Fact]
    public void TheLimitIsExactWithinAWindowAndRemainingCountsDown()
    {
        var budget = new SlidingWindowBudget();
        var start = 1000 * s_segment;
        var remaining = new List<int>();
        for (var i = 0; i < 5; i++)
        {
            Assert.True(budget.TryTake(5, s_window, start + i, out var left), $"permit {i} of 5 was refused");
            remaining.Add(left);
        }

        Assert.Equal([4, 3, 2, 1, 0], remaining);
        Assert.False(budget.TryTake(5, s_window, start + (s_segment * 5), out var none), "a sixth permit inside the window was granted");
        Assert.Equal(0, none);
    }

    [Fact]
    public void PermitsComeBackOneWindowAfterTheSegmentThatSpentThem()
    {
        var budget = new SlidingWindowBudget();
        var start = 1000 * s_segment;
        Assert.True(budget.TryTake(2, s_window, start, out _));             // segment 0
        Assert.True(budget.TryTake(2, s_window, start + (2 * s_segment), out _)); // segment 2
        Assert.False(budget.TryTake(2, s_window, start + (5 * s_segment), out _));

        // Segment 6 is one window after segment 0: its permit is back, segment 2's is not yet.
        Assert.True(budget.TryTake(2, s_window, start + (6 * s_segment), out var left), "segment 0's permit did not come back after a window");
        Assert.Equal(0, left);
        Assert.False(budget.TryTake(2, s_window, start + (7 * s_segment), out _));
        Assert.True(budget.TryTake(2, s_window, start + (8 * s_segment), out _), "segment 2's permit did not come back after a window");

        // Long idle: the whole window is free again.
        Assert.True(budget.TryTake(2, s_window, start + (100 * s_segment), out var afterIdle));
        Assert.Equal(1, afterIdle);
    }

    [Fact]
    public void EveryPrincipalOfOneTokenSpendsTheSameBudgetAndAnotherTokenHasItsOwn()
    {
        var limiter = new CredentialRateLimiter(new RateLimitOptions { ReadPerWindow = 2 }, new FastIngest.Observability.ServerMetrics());
        // The same token verified twice (re-verified after leaving the cache, or held by a dashboard session).
        var first = new FastIngest.Auth.Principal { TokenId = "tok_a", Scope = FastIngest.Auth.TokenScope.Ingest };
        var again = new FastIngest.Auth.Principal { TokenId = "tok_a", Scope = FastIngest.Auth.TokenScope.Ingest };
        var other = new FastIngest.Auth.Principal { TokenId = "tok_b", Scope = FastIngest.Auth.TokenScope.Ingest };

        Assert.Null(limiter.TryAcquire(new Microsoft.AspNetCore.Http.DefaultHttpContext(), RateLimitPolicy.Read, first));
        Assert.Null(limiter.TryAcquire(new Microsoft.AspNetCore.Http.DefaultHttpContext(), RateLimitPolicy.Read, again));
        var refused = limiter.TryAcquire(new Microsoft.AspNetCore.Http.DefaultHttpContext(), RateLimitPolicy.Read, first);
        Assert.True(refused == 60, $"a third read of one token within its window of two was answered {refused?.ToString() ?? "allowed"}");
        Assert.Null(limiter.TryAcquire(new Microsoft.AspNetCore.Http.DefaultHttpContext(), RateLimitPolicy.Read, other));
    }
}
