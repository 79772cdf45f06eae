using FastIngest.Storage;

namespace FastIngest.Tests.Storage;

public sealed class TestHistoryFoldTests
{
    private static readonly (string, string)[] s_names = [("S", "a"), ("S", "b"), ("S", "c")];

    [Fact]
    public void CommitSeenAgainLaterStillFormsOneGroup()
    {
        var finder = new FlakyTestFinder();
        finder.Add(0, group: 1, failed: false, timestampMs: 10); // commit 1 passes
        finder.Add(0, group: 2, failed: true, timestampMs: 20);  // commit 2 fails: a regression, not flakiness
        finder.Add(0, group: 1, failed: true, timestampMs: 30);  // commit 1 rebuilt, now fails: flaky

        var flaky = Assert.Single(finder.Top(s_names, 10));
        Assert.Equal((1L, 1L, 3L, 2L, 30L, 30L), (flaky.FlakyGroups, flaky.Flips, flaky.Executions, flaky.Failures, flaky.LastFlakyMs, flaky.LastSeenMs));
    }

    [Fact]
    public void FixedOrBrokenTestsAreNotFlakyAndTiesGoToTheMostRecent()
    {
        var finder = new FlakyTestFinder();
        finder.Add(0, 1, true, 10);
        finder.Add(0, 2, false, 20); // a: fixed by commit 2
        finder.Add(1, -7, true, 30);
        finder.Add(1, -7, false, 30); // b: flaky within one commit-less run
        finder.Add(2, 3, false, 40);
        finder.Add(2, 3, true, 40); // c: flaky on commit 3, later than b

        Assert.Equal(["c", "b"], finder.Top(s_names, 10).Select(t => t.Name));
        Assert.Equal(["c"], finder.Top(s_names, 1).Select(t => t.Name));
    }

    [Fact]
    public void P95IsTheNearestRankSampleWhateverTheFeedOrder()
    {
        var ranker = new SlowTestRanker();
        foreach (var d in Enumerable.Range(1, 21).Reverse())
        {
            ranker.Add(1, d * 10);
        }

        ranker.Add(0, 7);

        var top = ranker.Top(s_names, 10);
        Assert.Equal(["b", "a"], top.Select(t => t.Name));
        Assert.Equal((200L, 210L, 110.0, 21L), (top[0].P95Ms, top[0].MaxMs, top[0].MeanMs, top[0].Executions));
        Assert.Equal(7, top[1].P95Ms);
    }
}
