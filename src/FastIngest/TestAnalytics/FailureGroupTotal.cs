using FastIngest.Storage;

namespace FastIngest.TestAnalytics;

/// <summary>
/// A failure group over a window, summed from its (group, test) rows: how often, first and last seen, and the tests
/// it hit, most hit first. The one ranking of groups, for the API and the dashboard alike.
/// </summary>
public sealed record FailureGroupTotal(long GroupId, long Occurrences, long FirstMs, long LastMs, List<FailureOccurrence> Tests)
{
    /// <summary>The <paramref name="limit"/> groups with the most occurrences (the most recent first among equals).</summary>
    public static List<FailureGroupTotal> Top(IReadOnlyList<FailureOccurrence> rows, int limit) =>
        rows.GroupBy(static r => r.GroupId)
            .Select(static g => new FailureGroupTotal(
                g.Key,
                g.Sum(static r => r.Occurrences),
                g.Min(static r => r.FirstMs),
                g.Max(static r => r.LastMs),
                g.OrderByDescending(static r => r.Occurrences).ThenBy(static r => r.TestId).ToList()))
            .OrderByDescending(static g => g.Occurrences).ThenByDescending(static g => g.LastMs).ThenBy(static g => g.GroupId)
            .Take(limit)
            .ToList();
}
