using FastIngest.Storage;

namespace FastIngest.Tests.Storage.Contract;

/// <summary>
/// The read side of runs answers the same on every backend: a run (a sharded one with its shards), keyset pages
/// with filters, and daily statistics that count a sharded run once with its merged status and duration, exactly
/// as soon as the runs are acknowledged.
/// </summary>
public abstract class RunQueriesContract : IAsyncLifetime
{
    private const long Day = 24L * 60 * 60 * 1000;
    private const long Day20000 = 20_000 * Day; // 2024-10-04, midnight UTC

    private IStorageBackend _node = null!;
    private long _project;
    private long _otherProject;

    protected abstract Task<IStorageBackend> CreateBackendAsync();

    public async Task InitializeAsync()
    {
        _node = await CreateBackendAsync();
        var org = (await _node.Tenants.CreateOrgAsync("reads", 1)).Org!;
        _project = (await _node.Tenants.CreateProjectAsync(org.Key, "reads", 1)).Project!.Key;
        _otherProject = (await _node.Tenants.CreateProjectAsync(org.Key, "other", 1)).Project!.Key;

        // Day 20000: three runs on main (one failed), one on a branch; day 20001: a run sharded over two uploads
        // that arrive one after the other (the second fails and takes longer), and one run of another project.
        await IngestAsync(Run("a", Day20000 + 1000, passed: true, durationMs: 100));
        await IngestAsync(Run("b", Day20000 + 2000, passed: false, durationMs: 300));
        await IngestAsync(Run("c", Day20000 + 3000, passed: true, durationMs: 200));
        await IngestAsync(Run("d", Day20000 + 4000, passed: true, durationMs: 400) with { Branch = "feature/x" });
        await IngestAsync(Run("s", Day20000 + Day + 1000, passed: true, durationMs: 1000) with { Shard = "job-1", Counts = new RunCounts(3, 3, 0, 0) });
        await IngestAsync(Run("s", Day20000 + Day + 9000, passed: false, durationMs: 5000) with { Shard = "job-2", Counts = new RunCounts(2, 1, 1, 0) });
        await IngestAsync(Run("elsewhere", Day20000 + 5000, passed: true, durationMs: 1) with { ProjectKey = _otherProject });
    }

    public async Task DisposeAsync() => await _node.DisposeAsync();

    [Fact]
    public async Task ARunIsFoundByItsIdInItsProjectOnlyAndAShardedOneListsItsShards()
    {
        var b = await _node.Runs.FindRunAsync(_project, "b");
        Assert.Equal(new StoredRun("b", "failed", 300, Day20000 + 2000, "main", "abc123", null, Day20000 + 2000 + 500, "https://ci/b"), b);
        Assert.Null(await _node.Runs.FindRunAsync(_otherProject, "b"));
        Assert.Null(await _node.Runs.FindRunAsync(_project, "no-such-run"));

        var sharded = (await _node.Runs.FindRunAsync(_project, "s"))!;
        Assert.Equal(("failed", 5000L, Day20000 + Day + 1000, 2), (sharded.Status, sharded.DurationMs, sharded.TimestampMs, sharded.ShardCount));
        Assert.Equal(new RunCounts(5, 4, 1, 0), sharded.Counts);
        Assert.Equal(["job-1", "job-2"], sharded.Shards!.Select(static s => s.Name));
        Assert.Equal(["passed", "failed"], sharded.Shards!.Select(static s => s.Status));
    }

    [Fact]
    public async Task PagesAreNewestFirstFilteredAndContinueFromTheirLastRun()
    {
        var all = await _node.Runs.ListRunsAsync(new RunListQuery(_project, null, null, null, null, 10, null));
        Assert.Equal(["s", "d", "c", "b", "a"], all.Select(static r => r.Run.RunId));
        Assert.Equal(2, all[0].Run.ShardCount);

        var firstPage = await _node.Runs.ListRunsAsync(new RunListQuery(_project, null, null, null, null, 2, null));
        var last = firstPage[^1];
        var secondPage = await _node.Runs.ListRunsAsync(new RunListQuery(_project, null, null, null, null, 2, (last.Run.TimestampMs, last.Id)));
        Assert.Equal(["c", "b"], secondPage.Select(static r => r.Run.RunId));

        Assert.Equal(["s", "b"], (await _node.Runs.ListRunsAsync(new RunListQuery(_project, false, "main", null, null, 10, null))).Select(static r => r.Run.RunId));
        Assert.Equal(["d"], (await _node.Runs.ListRunsAsync(new RunListQuery(_project, true, "feature/x", null, null, 10, null))).Select(static r => r.Run.RunId));
        Assert.Equal(["c", "b"], (await _node.Runs.ListRunsAsync(
            new RunListQuery(_project, null, null, Day20000 + 2000, Day20000 + 4000, 10, null))).Select(static r => r.Run.RunId));
    }

    [Fact]
    public async Task DailyStatsCountEachRunOnceWithAShardedRunsMergedStatusAndDuration()
    {
        var days = await _node.Runs.DailyStatsAsync(_project, "", 20_000, 20_001);
        Assert.Equal([(20_000L, 4L, 3L, 1L, 400L), (20_001L, 1L, 0L, 1L, 5000L)], days.Select(static d => (d.Day, d.Total, d.Passed, d.Failed, d.DurationMaxMs)));
        var first = days[0];
        Assert.InRange(DurationHistogram.Percentile(first.Histogram, first.Total, 50, first.DurationMaxMs), 200, 210); // nearest rank of 100, 200, 300, 400
        Assert.Equal(5000, DurationHistogram.Percentile(days[1].Histogram, 1, 50, days[1].DurationMaxMs)); // the merged run, not 1000

        var branch = await _node.Runs.DailyStatsAsync(_project, "feature/x", 20_000, 20_001);
        Assert.Equal([(20_000L, 1L)], branch.Select(static d => (d.Day, d.Total)));
        Assert.Empty(await _node.Runs.DailyStatsAsync(_project, "", 19_000, 19_999));
    }

    private async Task IngestAsync(RunRecord run)
    {
        Assert.True(_node.Writer.TryPublish(run, out var completion), "the writer's queue refused the run");
        var result = await completion;
        Assert.True(result is { Committed: true, Outcome: RunWriteOutcome.Created }, $"run {run.RunId}: {result}");
    }

    private RunRecord Run(string runId, long timestampMs, bool passed, long durationMs) => new()
    {
        ProjectKey = _project,
        RunId = runId,
        Passed = passed,
        DurationMs = durationMs,
        TimestampMs = timestampMs,
        Branch = "main",
        CommitSha = "abc123",
        BuildUrl = "https://ci/" + runId,
        Fingerprint = (UInt128)(ulong)(runId.GetHashCode(StringComparison.Ordinal) ^ timestampMs),
        ReceivedAtMs = timestampMs + 500,
    };
}

public sealed class SqliteRunQueriesContract : RunQueriesContract
{
    protected override Task<IStorageBackend> CreateBackendAsync() => Task.FromResult(SqliteBackend.Create());
}

public sealed class PostgresRunQueriesContract : RunQueriesContract
{
    protected override Task<IStorageBackend> CreateBackendAsync() => PostgresBackend.CreateAsync();
}
