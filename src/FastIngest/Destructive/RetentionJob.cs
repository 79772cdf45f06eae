using FastIngest.Storage;

namespace FastIngest.Destructive;

/// <summary>
/// Applies each project's <c>retention_days</c> once an hour (and a minute after start) with the same paced,
/// batched purge as <c>POST /v1/projects/{id}/purge</c>, so it never blocks ingest for long. It also finishes
/// deletions of projects and orgs that a stop or crash interrupted (they were already final: marked, unreadable,
/// their tokens revoked; only their data was left on disk), and deletes confirm tokens a day after they expired
/// (until then a late confirm still hears "expired" rather than "unknown").
/// </summary>
public sealed class RetentionJob : BackgroundService
{
    private static readonly TimeSpan s_interval = TimeSpan.FromHours(1);
    private readonly ITenantStore _tenants;
    private readonly IDataRemovalStore _removal;
    private readonly IConfirmTokenStore _confirmTokens;
    private readonly RunPurger _purger;
    private readonly TimeProvider _clock;
    private readonly ILogger<RetentionJob> _logger;

    /// <summary>Deletions begun before this process started were interrupted; later ones have a request running them.</summary>
    private readonly long _startedAtMs;

    public RetentionJob(ITenantStore tenants, IDataRemovalStore removal, IConfirmTokenStore confirmTokens, RunPurger purger, TimeProvider clock,
        ILogger<RetentionJob> logger)
    {
        _confirmTokens = confirmTokens;
        _removal = removal;
        _tenants = tenants;
        _purger = purger;
        _clock = clock;
        _logger = logger;
        _startedAtMs = clock.GetUtcNow().ToUnixTimeMilliseconds();
    }

    /// <summary>One pass over every project with a retention period; returns the runs deleted.</summary>
    public async Task<long> RunOnceAsync(CancellationToken cancellation = default)
    {
        using var trace = Observability.BackgroundTrace.Start("fastingest.retention"); // one trace per pass, in every line it logs
        long deleted = 0;
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        await _confirmTokens.PurgeExpiredAsync(now - (long)TimeSpan.FromDays(1).TotalMilliseconds);
        foreach (var (projectKey, days) in await _tenants.ProjectsWithRetentionAsync())
        {
            cancellation.ThrowIfCancellationRequested(); // stopping: the next pass after the restart goes on
            try
            {
                deleted += await _purger.PurgeAsync(projectKey, now - (days * 24L * 60 * 60 * 1000), cancellation: cancellation);
            }
            catch (System.Data.Common.DbException e)
            {
                // One project (deleted meanwhile, say) must not stop the pass for every other project, on any backend.
                Log.RetentionFailed(_logger, e);
            }
        }

        // Deletions begun before this process started were cut short by a stop or a crash; one begun here more than
        // an hour ago belongs to a job that failed. Either way this pass finishes it (a deletion that is still being
        // done by its job meanwhile only makes both delete nothing twice).
        var (projects, orgs) = await _removal.UnfinishedDeletionsAsync(Math.Max(_startedAtMs, now - (long)TimeSpan.FromHours(1).TotalMilliseconds));
        foreach (var projectKey in projects)
        {
            deleted += await _purger.DeleteAllAsync(projectKey, cancellation: cancellation);
            await _removal.DeleteProjectAsync(projectKey, cancellation);
        }

        foreach (var orgKey in orgs)
        {
            await _removal.DeleteOrgAsync(orgKey);
        }

        return deleted;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(TimeSpan.FromMinutes(1), stoppingToken);
            using var timer = new PeriodicTimer(s_interval);
            do
            {
                try
                {
                    var deleted = await RunOnceAsync(stoppingToken);
                    Log.RetentionApplied(_logger, deleted);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A failed pass (disk full, locked file) is retried on the next tick; ingest is unaffected.
                    Log.RetentionFailed(_logger, e);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException)
        {
        }
    }
}
