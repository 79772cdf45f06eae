using System.Globalization;
using FastIngest.Storage;
using FastIngest.Storage.Sqlite;

namespace FastIngest.Quarantine;

/// <summary>
/// The opt-in per-project policy: a test that flaked within the last N days (the project's quiet period) is
/// quarantined, and released again once it has been quiet for N days. Only entries the policy made are released
/// by it; people's entries stay until people remove them. Runs every five minutes and whenever a project turns the
/// policy on; every change is recorded as made by <c>auto-quarantine</c>.
/// </summary>
public sealed class AutoQuarantine : BackgroundService
{
    private static readonly TimeSpan s_interval = TimeSpan.FromMinutes(5);
    private readonly IQuarantineStore _store;
    private readonly ITestQueries _tests;
    private readonly QuarantineSet _set;
    private readonly TimeProvider _clock;
    private readonly ILogger<AutoQuarantine> _logger;
    private readonly SemaphoreSlim _applying = new(1, 1);

    public AutoQuarantine(IQuarantineStore store, ITestQueries tests, QuarantineSet set, TimeProvider clock, ILogger<AutoQuarantine> logger)
    {
        _store = store;
        _tests = tests;
        _set = set;
        _clock = clock;
        _logger = logger;
    }

    /// <summary>Applies the policy to one project now; returns how many entries it added or released.</summary>
    public async Task<int> ApplyAsync(long projectKey, int releaseAfterDays)
    {
        await _applying.WaitAsync();
        try
        {
            return await ApplyOneAsync(projectKey, releaseAfterDays);
        }
        finally
        {
            _set.Changed(projectKey); // even when a write failed halfway, ingest answers re-read what is stored
            _applying.Release();
        }
    }

    private async Task<int> ApplyOneAsync(long projectKey, int releaseAfterDays)
    {
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var quietSince = now - (releaseAfterDays * DailyRollups.MsPerDay);
        await _tests.FoldPendingAsync();
        var flaky = (await _tests.WindowTotalsAsync(projectKey, "", DailyRollups.DayOf(quietSince)))
            .Where(t => t.Flakes > 0 && t.LastFlakyMs >= quietSince)
            .ToList();
        var names = await _tests.TestsAsync(projectKey, flaky.ConvertAll(static t => t.TestId));
        var active = (await _store.ActiveAsync(projectKey, now)).ToDictionary(static e => (e.Suite, e.Name));
        var flakyNames = new HashSet<(string, string)>();
        var changes = 0;
        foreach (var test in flaky)
        {
            if (names.GetValueOrDefault(test.TestId) is not { } info)
            {
                continue;
            }

            flakyNames.Add((info.Suite, info.Name));
            if (!active.ContainsKey((info.Suite, info.Name)))
            {
                var last = DateTimeOffset.FromUnixTimeMilliseconds(test.LastFlakyMs!.Value).ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture);
                await _store.PutAsync(projectKey, info.Suite, info.Name, $"auto: {test.Flakes} flake(s), the last at {last} UTC", null,
                    SqliteQuarantineStore.AutoQuarantineBy, now, byPolicy: true);
                changes++;
            }
        }

        foreach (var entry in active.Values.Where(e => e.Auto && !flakyNames.Contains((e.Suite, e.Name))))
        {
            await _store.RemoveAsync(projectKey, entry.Key, SqliteQuarantineStore.AutoQuarantineBy, now);
            changes++;
        }

        return changes;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(s_interval, _clock);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    foreach (var (projectKey, days) in await _store.PoliciesAsync())
                    {
                        await ApplyAsync(projectKey, days);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Upkeep must never stop the server: the next round tries again.
                    Log.AutoQuarantineFailed(_logger, e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
