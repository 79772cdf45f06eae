using FastIngest.RateLimiting;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.RateLimiting;

public sealed class AuthFailureTrackerTests
{
    private const string TokenId = "AbCdEf012345";

    [Fact]
    public void RepeatedFailuresBlockWithBackoffThatDoublesAndResetsAfterSuccess()
    {
        var clock = new ManualClock();
        var tracker = new AuthFailureTracker(new RateLimitOptions { AuthFailuresBeforeBlock = 5 }, clock);

        int BlockAfterFailures()
        {
            for (var i = 0; i < 5; i++)
            {
                tracker.RecordFailure(TokenId);
            }

            return tracker.BlockedSeconds(TokenId);
        }

        Assert.Equal(1, BlockAfterFailures());
        clock.Advance(TimeSpan.FromSeconds(1.5));
        Assert.Equal(0, tracker.BlockedSeconds(TokenId));
        Assert.Equal(2, BlockAfterFailures());
        clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(4, BlockAfterFailures());

        tracker.RecordSuccess(TokenId); // still blocked: a success inside the block forgives nothing
        Assert.Equal(4, tracker.BlockedSeconds(TokenId));
        clock.Advance(TimeSpan.FromSeconds(5));
        tracker.RecordSuccess(TokenId); // after the block: forgiven completely
        Assert.Equal(1, BlockAfterFailures());
    }

    [Fact]
    public void FewerFailuresThanTheThresholdNeverBlock()
    {
        var tracker = new AuthFailureTracker(new RateLimitOptions { AuthFailuresBeforeBlock = 5 }, new ManualClock());
        for (var i = 0; i < 4; i++)
        {
            tracker.RecordFailure(TokenId);
        }

        Assert.Equal(0, tracker.BlockedSeconds(TokenId));
    }

    [Fact]
    public void BlocksNeverExceedTheMaximum()
    {
        var clock = new ManualClock();
        var options = new RateLimitOptions { AuthFailuresBeforeBlock = 1, MaxBlock = TimeSpan.FromSeconds(60) };
        var tracker = new AuthFailureTracker(options, clock);
        for (var round = 0; round < 40; round++)
        {
            tracker.RecordFailure(TokenId);
            Assert.InRange(tracker.BlockedSeconds(TokenId), 1, 60);
            clock.Advance(TimeSpan.FromSeconds(61));
        }
    }

    [Fact]
    public void TrackingTableStaysWithinItsBoundUnderASprayOf100000TokenIds()
    {
        var options = new RateLimitOptions { MaxTrackedTokenIds = 10_000 };
        var tracker = new AuthFailureTracker(options, new ManualClock());
        for (var i = 0; i < 100_000; i++)
        {
            tracker.RecordFailure($"id{i:D10}");
            Assert.True(tracker.TrackedTokenIds <= options.MaxTrackedTokenIds, $"{tracker.TrackedTokenIds} entries after {i + 1} ids");
        }
    }

    [Fact]
    public void OneIdsFailuresAndSuccessesLeaveEveryOtherIdAlone()
    {
        var tracker = new AuthFailureTracker(new RateLimitOptions { AuthFailuresBeforeBlock = 3 }, new ManualClock());
        for (var i = 0; i < 3; i++)
        {
            tracker.RecordFailure("guessed00001");
        }

        tracker.RecordSuccess("otherToken01"); // another token's success forgives nothing
        Assert.True(tracker.BlockedSeconds("guessed00001") > 0);
        Assert.Equal(0, tracker.BlockedSeconds("otherToken01"));
    }
}
