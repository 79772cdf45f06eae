using FastIngest.Destructive;
using FastIngest.Storage;

namespace FastIngest.Tests.Storage.Contract;

/// <summary>
/// Purges and deletions behave the same on every backend: a purge takes old runs (a sharded one whole) with their
/// executions and leaves exact statistics; a deletion is final at once and its job leaves nothing of the tenant.
/// </summary>
public abstract class DataRemovalContract : IAsyncLifetime
{
    private const long Day = 24L * 60 * 60 * 1000;
    private static readonly TestCase[] s_cases =
    [
        new("s", "ok", null, TestCaseStatus.Passed, 10, 1, null),
        new("s", "bad", null, TestCaseStatus.Failed, 20, 1, "boom 1"),
    ];

    private IStorageBackend _node = null!;
    private OrgRecord _org = null!;
    private ProjectRecord _project = null!;

    protected abstract Task<IStorageBackend> CreateBackendAsync();

    public async Task InitializeAsync()
    {
        _node = await CreateBackendAsync();
        _org = (await _node.Tenants.CreateOrgAsync("removal", 1)).Org!;
        _project = (await _node.Tenants.CreateProjectAsync(_org.Key, "removal", 1)).Project!;
    }

    public async Task DisposeAsync() => await _node.DisposeAsync();

    [Fact]
    public async Task APurgeTakesOldRunsWithTheirExecutionsAndLeavesExactStatistics()
    {
        await IngestAsync(Run("old-1", 20_000, tests: s_cases));
        await IngestAsync(Run("old-2", 20_000, passed: false, tests: [s_cases[1] with { FailureMessage = "only the old run says this" }]));
        await IngestAsync(Run("old-sharded", 20_000) with { Shard = "a", Tests = s_cases });
        await IngestAsync(Run("old-sharded", 20_000) with { Shard = "b", Fingerprint = 99 });
        await IngestAsync(Run("new-1", 20_002, tests: s_cases));
        await IngestAsync(Run("new-2", 20_002, passed: false));
        Assert.Equal(5, await _node.Removal.CountRunsAsync(_project.Key, null));
        Assert.Equal(3, await _node.Removal.CountRunsAsync(_project.Key, 20_001 * Day));

        var deleted = await new RunPurger(_node.Removal).PurgeAsync(_project.Key, 20_001 * Day);

        Assert.Equal(3, deleted);
        Assert.Equal(["new-2", "new-1"], (await _node.Runs.ListRunsAsync(new RunListQuery(_project.Key, null, null, null, null, 10, null))).Select(static r => r.Run.RunId));
        Assert.Equal(2, await Count("test_runs"));
        Assert.Equal(s_cases.Length, await Count("executions"));
        Assert.Equal(0, await _node.ScalarAsync("SELECT count(*) FROM failure_messages WHERE message = 'only the old run says this';"));
        Assert.Equal(1, await Count("failure_messages"));
        var days = await _node.Runs.DailyStatsAsync(_project.Key, "", 19_999, 20_003);
        Assert.Equal([(20_002L, 2L, 1L, 1L)], days.Select(static d => (d.Day, d.Total, d.Passed, d.Failed)));
    }

    [Fact]
    public async Task ADeletedProjectIsGoneAtOnceRefusesRunsAndItsJobLeavesNothing()
    {
        Assert.True(await _node.Tenants.InsertTokenAsync(new StoredToken("p-tok", "h", "ingest", _org.Key, null, _project.Key, null, null, 1, null, null, null)));
        await IngestAsync(Run("r-1", 20_000, tests: s_cases));
        await _node.Quarantine.PutAsync(_project.Key, "s", "bad", "flaky", null, "alice", 1);

        Assert.Equal(["p-tok"], await _node.Removal.BeginProjectDeletionAsync(_project.Key, 50));
        Assert.Null(await _node.Removal.BeginProjectDeletionAsync(_project.Key, 51));
        Assert.Null(await _node.Tenants.FindProjectAsync(_project.Id));
        Assert.NotNull((await _node.Tenants.FindTokenAsync("p-tok"))!.RevokedAtMs);
        Assert.Equal(RunWriteOutcome.ProjectGone, await OutcomeAsync(Run("r-2", 20_000)));

        Assert.Equal(1, await new RunPurger(_node.Removal).DeleteAllAsync(_project.Key));
        await _node.Removal.DeleteProjectAsync(_project.Key);
        foreach (var table in new[] { "test_runs", "executions", "tests", "failure_messages", "failure_groups", "run_daily_stats", "quarantine", "api_tokens" })
        {
            Assert.True(await Count(table) == 0, $"{table} still has rows of the deleted project");
        }

        Assert.Equal(-1, await _node.ScalarAsync($"SELECT id FROM projects WHERE id = {_project.Key};"));
    }

    [Fact]
    public async Task AnOrgsDeletionTakesItsProjectsAndTokensAtOnce()
    {
        var second = (await _node.Tenants.CreateProjectAsync(_org.Key, "second", 1)).Project!;
        Assert.True(await _node.Tenants.InsertTokenAsync(new StoredToken("o-tok", "h", "org", _org.Key, null, null, null, null, 1, null, null, null)));
        Assert.True(await _node.Tenants.InsertTokenAsync(new StoredToken("p-tok", "h", "read", _org.Key, null, second.Key, null, null, 1, null, null, null)));

        var (projects, tokens) = (await _node.Removal.BeginOrgDeletionAsync(_org.Key, 50))!.Value;

        Assert.Equal([_project.Key, second.Key], projects.Order());
        Assert.Equal(["o-tok", "p-tok"], tokens.Order(StringComparer.Ordinal));
        Assert.Null(await _node.Tenants.FindOrgAsync(_org.Id));
        Assert.Equal(CreateResult.ParentNotFound, (await _node.Tenants.CreateProjectAsync(_org.Key, "late", 60)).Result);
        var (unfinishedProjects, unfinishedOrgs) = await _node.Removal.UnfinishedDeletionsAsync(100);
        Assert.Equal([_project.Key, second.Key], unfinishedProjects.Order());
        Assert.Equal([_org.Key], unfinishedOrgs);

        foreach (var project in projects)
        {
            await _node.Removal.DeleteProjectAsync(project);
        }

        Assert.Equal(["o-tok"], await _node.Removal.DeleteOrgAsync(_org.Key));
        Assert.Equal(0, await Count("projects"));
        Assert.Equal(0, await Count("orgs"));
    }

    private Task<long> Count(string table) => _node.ScalarAsync($"SELECT count(*) FROM {table};");

    private async Task IngestAsync(RunRecord run) => Assert.Equal(RunWriteOutcome.Created, await OutcomeAsync(run));

    private async Task<RunWriteOutcome> OutcomeAsync(RunRecord run)
    {
        Assert.True(_node.Writer.TryPublish(run, out var completion), "the writer's queue refused the run");
        var result = await completion;
        Assert.True(result.Committed, $"run {run.RunId} was not committed");
        return result.Outcome;
    }

    private RunRecord Run(string runId, long day, bool passed = true, TestCase[]? tests = null) => new()
    {
        ProjectKey = _project.Key,
        RunId = runId,
        Passed = passed,
        DurationMs = 100,
        TimestampMs = (day * Day) + 1000,
        Branch = "main",
        Tests = tests,
        Fingerprint = (UInt128)(ulong)runId.GetHashCode(StringComparison.Ordinal),
        ReceivedAtMs = (day * Day) + 2000,
    };
}

public sealed class SqliteDataRemovalContract : DataRemovalContract
{
    protected override Task<IStorageBackend> CreateBackendAsync() => Task.FromResult(SqliteBackend.Create());
}

public sealed class PostgresDataRemovalContract : DataRemovalContract
{
    protected override Task<IStorageBackend> CreateBackendAsync() => PostgresBackend.CreateAsync();
}
