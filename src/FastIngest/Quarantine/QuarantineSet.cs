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
    /// <summary>How long a loaded set is trusted: a change another process (or a lost race) made shows within this.</summary>
    private const long TrustMs = 5_000;

    private readonly ConcurrentDictionary<long, (long LoadedAtMs, Dictionary<(string Suite, string Name), long?> Entries)> _projects = new();

    public QuarantineSet(IQuarantineStore store, TimeProvider clock)
    {
        _store = store;
        _clock = clock;
    }

    /// <summary>The project's quarantine right now (from memory, once loaded).</summary>
    public async ValueTask<QuarantinedTests> ForProjectAsync(long projectKey)
    {
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (!_projects.TryGetValue(projectKey, out var loaded) || now - loaded.LoadedAtMs > TrustMs)
        {
            var active = await _store.ActiveAsync(projectKey, now);
            loaded = (now, active.ToDictionary(static e => (e.Suite, e.Name), static e => e.ExpiresAtMs));
            _projects[projectKey] = loaded;
        }

        return new QuarantinedTests(loaded.Entries, now);
    }

    public void Changed(long projectKey) => _projects.TryRemove(projectKey, out _);
}

/// <summary>A project's quarantined tests (with their expiry) as of <see cref="NowMs"/>.</summary>
public readonly record struct QuarantinedTests(Dictionary<(string Suite, string Name), long?> Entries, long NowMs)
{
    /// <summary>Whether the test is quarantined (an entry past its expiry no longer counts).</summary>
    public bool Contains(string suite, string name) => Entries.TryGetValue((suite, name), out var expires) && (expires is null || expires > NowMs);
}
