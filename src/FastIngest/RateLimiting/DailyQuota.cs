using System.Collections.Concurrent;
using FastIngest.Configuration;

namespace FastIngest.RateLimiting;

/// <summary>
/// What one org may store per UTC day: rows (runs plus test cases; <c>--quota-rows</c>) and bytes of the request
/// bodies that carried them, as sent (<c>--quota-bytes</c>), so one tenant cannot grow the database without bound
/// (measured before: 0.77 MB of gzip became 100,000 test cases, and one tenant added 1.7 GB in 20 s). A run is
/// reserved before it is queued and given back unless it was newly stored, so retries and conflicts cost
/// nothing. Either budget at 0 is off. Kept in memory like the rate limits: a restart starts the day afresh.
/// </summary>
public sealed class DailyQuota
{
    private readonly long _rowsPerDay;
    private readonly long _bytesPerDay;
    private readonly TimeProvider _clock;
    private readonly ConcurrentDictionary<long, Usage> _usage = new();

    public DailyQuota(ServerOptions options, TimeProvider clock)
    {
        _rowsPerDay = options.RowsPerOrgPerDay;
        _bytesPerDay = options.BytesPerOrgPerDay;
        _clock = clock;
    }

    private bool Enabled => _rowsPerDay > 0 || _bytesPerDay > 0;

    /// <summary>
    /// Reserves the rows and bytes, or returns the seconds until the quota resets (the next UTC midnight) when
    /// they do not fit. A single run larger than a whole budget never fits.
    /// </summary>
    public int? TryReserve(long orgKey, long rows, long bytes)
    {
        if (!Enabled)
        {
            return null;
        }

        var now = _clock.GetUtcNow();
        var day = now.ToUnixTimeMilliseconds() / 86_400_000;
        var usage = _usage.GetOrAdd(orgKey, static _ => new Usage());
        lock (usage)
        {
            if (usage.Day != day)
            {
                usage.Day = day;
                usage.Rows = 0;
                usage.Bytes = 0;
            }

            if ((_rowsPerDay <= 0 || usage.Rows + rows <= _rowsPerDay) && (_bytesPerDay <= 0 || usage.Bytes + bytes <= _bytesPerDay))
            {
                usage.Rows += rows;
                usage.Bytes += bytes;
                return null;
            }
        }

        var midnight = new DateTimeOffset(now.UtcDateTime.Date.AddDays(1), TimeSpan.Zero);
        return Math.Max(1, (int)Math.Ceiling((midnight - now).TotalSeconds));
    }

    /// <summary>Gives back what was reserved for a run that was not newly stored.</summary>
    public void Release(long orgKey, long rows, long bytes)
    {
        if (Enabled && _usage.TryGetValue(orgKey, out var usage))
        {
            lock (usage)
            {
                usage.Rows = Math.Max(0, usage.Rows - rows);
                usage.Bytes = Math.Max(0, usage.Bytes - bytes);
            }
        }
    }

    private sealed class Usage
    {
        public long Day;
        public long Rows;
        public long Bytes;
    }
}
