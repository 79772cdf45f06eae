using System.Collections.Concurrent;
using FastIngest.Storage;

namespace FastIngest.Quarantine;

/// <summary>
/// Which tests of a project are quarantined, kept in memory so an ingest answer can say how many of its failures
/// block without a database read: loaded on a project's first failing upload, dropped whenever the project's
/// quarantine changes (this server makes every change), and entries past their expiry simply stop counting.
/// </summary>
public sealed class QuarantineSet
{
    private readonly IQuarantineStore _store;
    private readonly TimeProvider _clock;
    private readonly ConcurrentDictionary<long, Dictionary<(string Suite, string Name), long?>> _projects = new();

    public QuarantineSet(IQuarantineStore store, TimeProvider clock)
    {
        _store = store;
        _clock = clock;
    }

    /// <summary>Whether the test is quarantined in the project right now.</summary>
    public bool Contains(long projectKey, string suite, string name)
    {
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var entries = _projects.GetOrAdd(projectKey, key =>
            _store.Active(key, now).ToDictionary(static e => (e.Suite, e.Name), static e => e.ExpiresAtMs));
        return entries.TryGetValue((suite, name), out var expires) && (expires is null || expires > now);
    }

    public void Changed(long projectKey) => _projects.TryRemove(projectKey, out _);
}
