using System.Diagnostics;

namespace FastIngest.RateLimiting;

/// <summary>
/// One credential's budget for one policy: a sliding window of <see cref="Segments"/> segments, as
/// System.Threading.RateLimiting's sliding-window limiter counts it (a permit spent comes back one window later,
/// a segment at a time). A token's budgets are attached to its cached <see cref="Auth.Principal"/>, so taking a permit
/// is one small lock held by that token's requests alone and allocates nothing; the partitioned limiter it replaced
/// took a global lock, allocated a closure per call and was looked up twice per request (#21).
/// </summary>
public sealed class SlidingWindowBudget
{
    public const int Segments = 6;
    private readonly long[] _counts = new long[Segments];
    private readonly Lock _lock = new();
    private long _segment; // the number of the newest segment since the Stopwatch's epoch
    private long _taken;   // permits in the window

    /// <summary>Takes one of <paramref name="limit"/> permits per window; <paramref name="remaining"/> is what is left after it.</summary>
    public bool TryTake(int limit, TimeSpan window, out int remaining) => TryTake(limit, window, Stopwatch.GetTimestamp(), out remaining);

    /// <summary>As above, at a given <see cref="Stopwatch"/> timestamp (tests pass the time instead of sleeping).</summary>
    internal bool TryTake(int limit, TimeSpan window, long timestamp, out int remaining)
    {
        var segmentTicks = Math.Max(1, (long)(window.TotalSeconds * Stopwatch.Frequency / Segments));
        var now = timestamp / segmentTicks;
        lock (_lock)
        {
            var segment = Math.Max(now, _segment); // a thread that read the clock, then stalled, counts in the newest segment
            if (segment > _segment)
            {
                // The segments that slid out of the window give their permits back.
                for (long s = _segment + 1, last = Math.Min(segment, _segment + Segments); s <= last; s++)
                {
                    var slot = (int)(s % Segments);
                    _taken -= _counts[slot];
                    _counts[slot] = 0;
                }

                _segment = segment;
            }

            if (_taken >= limit)
            {
                remaining = 0;
                return false;
            }

            _counts[(int)(segment % Segments)]++;
            _taken++;
            remaining = (int)(limit - _taken);
            return true;
        }
    }
}
