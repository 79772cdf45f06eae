using FastIngest.RateLimiting;

namespace FastIngest.TestCases;

/// <summary>
/// Reads that scan a window's executions (flaky, slowest) cost up to seconds of CPU each over millions of
/// executions; at most one per two cores runs at once, one per org, so one tenant polling its own history
/// cannot take the CPU that everyone's ingest and reads need. Others wait (10 s at most, then 503).
/// </summary>
public sealed class HeavyReadSlots() : FairSlots(Math.Max(1, Environment.ProcessorCount / 2), 1)
{
    /// <summary>
    /// Runs a blocking scan on a thread of its own, not a thread-pool worker: on one core the pool has one worker,
    /// and a scan holding it for seconds stalled every other request until the pool grew (400 ms seen in
    /// <c>load/noisy_neighbours.sh</c>). An embedded backend answers <paramref name="scan"/> synchronously, so the
    /// whole scan runs on that thread; a networked one awaits its I/O and gives the thread back meanwhile.
    /// </summary>
    public static Task<T> RunAsync<T>(Func<ValueTask<T>> scan) =>
        Task.Factory.StartNew(() => scan().AsTask(), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
}
