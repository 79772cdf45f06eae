namespace FastIngest.Storage;

/// <summary>
/// Accumulates runs into (project, UTC day, branch) groups in memory: a fold turns many runs into a handful of
/// groups and upserts each once, instead of touching the roll-up table per run.
/// </summary>
internal sealed class DailyRollups
{
    public const long MsPerDay = 24L * 60 * 60 * 1000;

    public Dictionary<(long Project, long Day, string Branch), Group> Groups { get; } = [];

    /// <summary>The day as a date, <c>yyyy-MM-dd</c> (day 0 is 1970-01-01).</summary>
    public static string DateOf(long day) =>
        DateOnly.FromDayNumber(checked((int)(day + DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber)))
            .ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);

    public static long DayOf(long timestampMs) => Math.DivRem(timestampMs, MsPerDay) is var (q, r) && r < 0 ? q - 1 : q;

    public void Add(long project, long timestampMs, string? branch, bool passed, long durationMs)
    {
        var day = DayOf(timestampMs);
        Get(project, day, "").Add(passed, durationMs);
        if (!string.IsNullOrEmpty(branch))
        {
            Get(project, day, branch).Add(passed, durationMs);
        }
    }

    /// <summary>
    /// Takes a run counted earlier back out (a sharded run is counted again when a shard changes it). The groups
    /// are deltas merged into stored rows, so counts may go below zero here; histogram counts wrap as uint32 and
    /// merge back exactly. The maximum duration stays: a merged run only ever gets longer.
    /// </summary>
    public void Remove(long project, long timestampMs, string? branch, bool passed, long durationMs)
    {
        var day = DayOf(timestampMs);
        Get(project, day, "").Remove(passed, durationMs);
        if (!string.IsNullOrEmpty(branch))
        {
            Get(project, day, branch).Remove(passed, durationMs);
        }
    }

    private Group Get(long project, long day, string branch)
    {
        var key = (project, day, branch);
        if (!Groups.TryGetValue(key, out var group))
        {
            Groups[key] = group = new Group();
        }

        return group;
    }

    internal sealed class Group
    {
        public long Total;
        public long Passed;
        public long Failed;
        public long DurationMax;
        public readonly byte[] Histogram = new byte[DurationHistogram.BlobLength];

        public void Add(bool passed, long durationMs)
        {
            Total++;
            if (passed)
            {
                Passed++;
            }
            else
            {
                Failed++;
            }

            DurationMax = Math.Max(DurationMax, durationMs);
            DurationHistogram.Add(Histogram, durationMs);
        }

        public void ClampAtZero()
        {
            (Total, Passed, Failed) = (Math.Max(0, Total), Math.Max(0, Passed), Math.Max(0, Failed));
            DurationHistogram.ClampWrapped(Histogram);
        }

        public void Remove(bool passed, long durationMs)
        {
            Total--;
            if (passed)
            {
                Passed--;
            }
            else
            {
                Failed--;
            }

            DurationHistogram.Subtract(Histogram, durationMs);
        }
    }
}
