using System.Runtime.InteropServices;

namespace FastIngest.Storage;

/// <summary>
/// Finds flaky tests in one pass over test executions fed in run-time order (then run, then upload order):
/// a test is flaky when one group of executions (a commit, or a run without a commit) holds both a pass and a
/// failure. Along the way it counts each test's flips (pass/fail changes from one execution to the next).
/// Storage-neutral: a backend streams its rows in, no sorting or grouping is asked of the database.
/// </summary>
public sealed class FlakyTestFinder
{
    private const byte Passed = 1, Failed = 2, Counted = 4;
    private readonly List<TestState> _tests = [];
    private readonly Dictionary<(int Test, long Group), GroupState> _groups = [];

    /// <param name="test">A dense id the caller gives each (suite, name): 0, 1, 2, ...</param>
    /// <param name="group">The execution's group: the same value for the same commit, or for one commit-less run.</param>
    /// <param name="failed">Failed or errored (skipped executions are not fed in).</param>
    /// <param name="timestampMs">The run's timestamp; never less than the previous call's.</param>
    public void Add(int test, long group, bool failed, long timestampMs)
    {
        while (_tests.Count <= test)
        {
            _tests.Add(new TestState { LastFailed = -1 });
        }

        ref var state = ref CollectionsMarshal.AsSpan(_tests)[test];
        state.Executions++;
        if (failed)
        {
            state.Failures++;
        }

        var failedFlag = failed ? (sbyte)1 : (sbyte)0;
        if (state.LastFailed >= 0 && state.LastFailed != failedFlag)
        {
            state.Flips++;
        }

        state.LastFailed = failedFlag;
        state.LastSeenMs = timestampMs;

        ref var groupState = ref CollectionsMarshal.GetValueRefOrAddDefault(_groups, (test, group), out _);
        groupState.Flags |= failed ? Failed : Passed;
        groupState.LastMs = Math.Max(groupState.LastMs, timestampMs);
        if ((groupState.Flags & (Passed | Failed)) == (Passed | Failed))
        {
            if ((groupState.Flags & Counted) == 0)
            {
                groupState.Flags |= Counted;
                state.FlakyGroups++;
            }

            state.LastFlakyMs = Math.Max(state.LastFlakyMs, groupState.LastMs);
        }
    }

    /// <summary>The flaky tests, most flips first, then most recently flaky; <paramref name="names"/> maps ids.</summary>
    public IReadOnlyList<FlakyTest> Top(IReadOnlyList<(string Suite, string Name)> names, int limit)
    {
        var flaky = new List<FlakyTest>();
        for (var i = 0; i < _tests.Count; i++)
        {
            var s = _tests[i];
            if (s.FlakyGroups > 0)
            {
                flaky.Add(new FlakyTest(names[i].Suite, names[i].Name, s.Flips, s.FlakyGroups, s.Executions, s.Failures, s.LastFlakyMs, s.LastSeenMs));
            }
        }

        flaky.Sort(static (a, b) =>
            b.Flips != a.Flips ? b.Flips.CompareTo(a.Flips)
            : b.LastFlakyMs != a.LastFlakyMs ? b.LastFlakyMs.CompareTo(a.LastFlakyMs)
            : string.CompareOrdinal(a.Suite, b.Suite) is var bySuite and not 0 ? bySuite
            : string.CompareOrdinal(a.Name, b.Name));
        return flaky.Count > limit ? flaky.GetRange(0, limit) : flaky;
    }

    private struct TestState
    {
        public long Executions, Failures, Flips, FlakyGroups, LastFlakyMs, LastSeenMs;
        public sbyte LastFailed;
    }

    private struct GroupState
    {
        public byte Flags;
        public long LastMs;
    }
}
