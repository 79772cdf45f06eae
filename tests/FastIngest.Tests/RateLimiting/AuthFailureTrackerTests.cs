using System.Net;
using FastIngest.RateLimiting;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.RateLimiting;

public sealed class AuthFailureTrackerTests
{
    private static readonly IPAddress s_client = IPAddress.Parse("203.0.113.7");

    [Fact]
    public void RepeatedFailuresBlockWithBackoffThatDoublesAndResetsAfterSuccess()
    {
        var clock = new ManualClock();
        var tracker = new AuthFailureTracker(new RateLimitOptions { AuthFailuresBeforeBlock = 5 }, clock);

        int BlockAfterFailures()
        {
            for (var i = 0; i < 5; i++)
            {
                tracker.RecordFailure(s_client);
            }

            return tracker.BlockedSeconds(s_client);
        }

        Assert.Equal(1, BlockAfterFailures());
        clock.Advance(TimeSpan.FromSeconds(1.5));
        Assert.Equal(0, tracker.BlockedSeconds(s_client));
        Assert.Equal(2, BlockAfterFailures());
        clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(4, BlockAfterFailures());

        tracker.RecordSuccess(s_client); // still blocked: a success inside the block forgives nothing
        Assert.Equal(4, tracker.BlockedSeconds(s_client));
        clock.Advance(TimeSpan.FromSeconds(5));
        tracker.RecordSuccess(s_client); // after the block: forgiven completely
        Assert.Equal(1, BlockAfterFailures());
    }

    [Fact]
    public void FewerFailuresThanTheThresholdNeverBlock()
    {
        var tracker = new AuthFailureTracker(new RateLimitOptions { AuthFailuresBeforeBlock = 5 }, new ManualClock());
        for (var i = 0; i < 4; i++)
        {
            tracker.RecordFailure(s_client);
        }

        Assert.Equal(0, tracker.BlockedSeconds(s_client));
    }

    [Fact]
    public void BlocksNeverExceedTheMaximum()
    {
        var clock = new ManualClock();
        var options = new RateLimitOptions { AuthFailuresBeforeBlock = 1, MaxBlock = TimeSpan.FromSeconds(60) };
        var tracker = new AuthFailureTracker(options, clock);
        for (var round = 0; round < 40; round++)
        {
            tracker.RecordFailure(s_client);
            Assert.InRange(tracker.BlockedSeconds(s_client), 1, 60);
            clock.Advance(TimeSpan.FromSeconds(61));
        }
    }

    [Fact]
    public void TrackingTableStaysWithinItsBoundUnderASprayOf100000Addresses()
    {
        var options = new RateLimitOptions { MaxTrackedAddresses = 10_000 };
        var tracker = new AuthFailureTracker(options, new ManualClock());
        var bytes = new byte[4];
        for (var i = 0; i < 100_000; i++)
        {
            BitConverter.TryWriteBytes(bytes, i + 1);
            tracker.RecordFailure(new IPAddress(bytes));
            Assert.True(tracker.TrackedAddresses <= options.MaxTrackedAddresses, $"{tracker.TrackedAddresses} entries after {i + 1} addresses");
        }
    }
}
