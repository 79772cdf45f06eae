using System.Collections.Concurrent;
using System.Security.Cryptography;
using FastIngest.Auth;

namespace FastIngest.Destructive;

/// <summary>
/// Long destructive work (purging runs, deleting a project's or an org's data, a backup) runs here, not inside the
/// request: the request answers 202 with the job's URL once the work has started, and <c>GET /v1/jobs/{id}</c>
/// tells how far it got and how it ended. Jobs live in memory: after a restart a finished job is forgotten, and a
/// deletion that was cut short is finished by the retention job (the deletion itself was final before the 202).
/// On shutdown running jobs are asked to stop between batches and awaited, so the writer they use is still there.
/// </summary>
public sealed class DestructiveJobs : IHostedService, IDisposable
{
    /// <summary>How long a finished job stays readable.</summary>
    private static readonly TimeSpan s_keepFinished = TimeSpan.FromHours(1);

    /// <summary>How long shutdown waits for running jobs (they stop between batches, so this is ample).</summary>
    private static readonly TimeSpan s_stopWait = TimeSpan.FromSeconds(20);

    private readonly ConcurrentDictionary<string, DestructiveJob> _jobs = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _starting = new();
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;

    public DestructiveJobs(TimeProvider clock, ILoggerFactory loggers)
    {
        _clock = clock;
        _logger = loggers.CreateLogger("FastIngest.Jobs");
    }

    /// <summary>
    /// Starts <paramref name="work"/> on the thread pool and returns its job at once. <paramref name="orgKey"/> says
    /// whose it is (null: the server's, readable by admins only, as a backup).
    /// </summary>
    public DestructiveJob? Start(string action, string target, Principal startedBy, long? orgKey, long revokedTokens,
        Func<DestructiveJob, CancellationToken, Task> work)
    {
        lock (_starting)
        {
            // Stopping: no new job (the caller answers 503); one that started is in the list StopAsync awaits.
            return _stopping.IsCancellationRequested ? null : StartLocked(action, target, startedBy, orgKey, revokedTokens, work);
        }
    }

    private DestructiveJob StartLocked(string action, string target, Principal startedBy, long? orgKey, long revokedTokens,
        Func<DestructiveJob, CancellationToken, Task> work)
    {
        ForgetOldJobs();
        var job = new DestructiveJob(
            "job_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), action, target, startedBy.TokenId, orgKey, Now())
        {
            RevokedTokens = revokedTokens,
        };
        // Completion is set before the job is listed, so a shutdown that lists it can always await it. The job's log
        // lines carry the trace of the request that started it, as a span of its own.
        var trace = Observability.BackgroundTrace.Capture();
        job.Completion = Task.Run(async () =>
        {
            using var span = Observability.BackgroundTrace.Start("fastingest.job." + action, trace);
            try
            {
                await work(job, _stopping.Token);
                var status = _stopping.IsCancellationRequested ? JobStatus.Interrupted : JobStatus.Succeeded;
                job.Finish(status, null, Now());
                var statusName = status == JobStatus.Succeeded ? "succeeded" : "interrupted";
                var deletedRuns = job.DeletedRuns;
                Log.JobFinished(_logger, job.Id, job.Action, job.Target, statusName, deletedRuns);
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                job.Finish(JobStatus.Interrupted, "the server stopped meanwhile", Now());
            }
            catch (Exception e)
            {
                // The caller gets the reason through the job; the details (never a secret) go to the log.
                job.Finish(JobStatus.Failed, e.Message, Now());
                Log.JobFailed(_logger, job.Id, job.Action, job.Target, e);
            }
        });
        _jobs[job.Id] = job;
        return job;
    }

    /// <summary>The job, if it exists and <paramref name="principal"/> may see it (else null: answer 404, not 403).</summary>
    public DestructiveJob? Find(string id, Principal principal) =>
        _jobs.TryGetValue(id, out var job)
        && (principal.Scope == TokenScope.Admin
            || principal.TokenId == job.StartedBy
            || (principal.Scope == TokenScope.Org && job.OrgKey is { } org && principal.OrgKey == org))
            ? job
            : null;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        Task?[] running;
        lock (_starting)
        {
            _stopping.Cancel();
            running = _jobs.Values.Select(static j => j.Completion).Where(static t => t is { IsCompleted: false }).ToArray();
        }

        await Task.WhenAll(running!).WaitAsync(s_stopWait, cancellationToken).ContinueWith(static _ => { }, TaskScheduler.Default);
    }

    public void Dispose() => _stopping.Dispose();

    private void ForgetOldJobs()
    {
        var cutoff = Now() - (long)s_keepFinished.TotalMilliseconds;
        foreach (var (id, job) in _jobs)
        {
            if (job.Status != JobStatus.Running && job.FinishedAtMs is { } finished && finished < cutoff) // status first: then the time is written
            {
                _jobs.TryRemove(id, out _);
            }
        }
    }

    private long Now() => _clock.GetUtcNow().ToUnixTimeMilliseconds();
}

public enum JobStatus
{
    Running,
    Succeeded,
    Failed,

    /// <summary>The server stopped meanwhile; what was done stays done (a purge can simply be started again).</summary>
    Interrupted,
}

/// <summary>One job: what it does, to what, how far it got (updated as it goes) and how it ended.</summary>
public sealed class DestructiveJob
{
    private long _deletedRuns;
    private volatile JobStatus _status = JobStatus.Running;

    internal DestructiveJob(string id, string action, string target, string startedBy, long? orgKey, long startedAtMs)
    {
        Id = id;
        Action = action;
        Target = target;
        StartedBy = startedBy;
        OrgKey = orgKey;
        StartedAtMs = startedAtMs;
    }

    public string Id { get; }

    public string Action { get; }

    public string Target { get; }

    /// <summary>The token id that started it (an id, never a secret).</summary>
    public string StartedBy { get; }

    public long? OrgKey { get; }

    public long StartedAtMs { get; }

    public JobStatus Status => _status;

    public long? FinishedAtMs { get; private set; }

    public string? Error { get; private set; }

    public long DeletedRuns => Interlocked.Read(ref _deletedRuns);

    /// <summary>Tokens the action revoked before the job started.</summary>
    public long RevokedTokens { get; init; }

    /// <summary>A backup's file and size, once written.</summary>
    public (string Path, long Bytes)? Backup { get; set; }

    internal Task? Completion { get; set; }

    public void AddDeletedRuns(int runs) => Interlocked.Add(ref _deletedRuns, runs);

    internal void Finish(JobStatus status, string? error, long nowMs)
    {
        Error = error;
        FinishedAtMs = nowMs;
        _status = status; // last: a reader that sees the end also sees its time and reason
    }
}
