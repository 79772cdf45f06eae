using System.Runtime.InteropServices;

namespace FastIngest.Storage;

/// <summary>
/// Ranks tests by nearest-rank p95 duration (the ⌈0.95·n⌉-th smallest of a test's n executions) from executions
/// streamed in any order. Exact; memory is one integer per execution in the window.
/// </summary>
public sealed class SlowTestRanker
{
    private readonly List<List<long>> _durations = [];

    /// <param name="test">A dense id the caller gives each (suite, name): 0, 1, 2, ...</param>
    /// <param name="durationMs">One non-skipped execution's duration.</param>
    public void Add(int test, long durationMs)
    {
        while (_durations.Count <= test)
        {
            _durations.Add([]);
        }

        _durations[test].Add(durationMs);
    }

    public IReadOnlyList<SlowTest> Top(IReadOnlyList<(string Suite, string Name)> names, int limit)
    {
        var ranked = new List<SlowTest>(_durations.Count);
        for (var i = 0; i < _durations.Count; i++)
        {
            var samples = CollectionsMarshal.AsSpan(_durations[i]);
            if (samples.IsEmpty)
            {
                continue;
            }

            samples.Sort();
            long sum = 0;
            foreach (var sample in samples)
            {
                sum += sample;
            }

            var rank = ((samples.Length * 95) + 99) / 100;
            ranked.Add(new SlowTest(names[i].Suite, names[i].Name, samples[rank - 1], samples[^1], (double)sum / samples.Length, samples.Length));
        }

        ranked.Sort(static (a, b) =>
            b.P95Ms != a.P95Ms ? b.P95Ms.CompareTo(a.P95Ms)
            : string.CompareOrdinal(a.Suite, b.Suite) is var bySuite and not 0 ? bySuite
            : string.CompareOrdinal(a.Name, b.Name));
        return ranked.Count > limit ? ranked.GetRange(0, limit) : ranked;
    }
}
