using FastIngest.Configuration;
using FastIngest.Storage;
using FastIngest.Storage.Sqlite;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Storage;

/// <summary>
/// What the storage itself guarantees, whatever the layers above do: keys are never reused, a run of a gone
/// project is refused without failing its batch, a run that breaks a constraint fails alone, and a run stored
/// after the newest runs were deleted is still counted in the roll-ups.
/// </summary>
public sealed class TenantIsolationStorageTests : IDisposable
{
    private readonly TempSqliteDatabase _temp = new("isolation");
    private readonly SqliteDatabase _database;
    private readonly SqliteTenantStore _tenants;
    private readonly SqliteDataRemovalStore _removal;
    private readonly SqliteRunBatchStore _writer;
    private readonly SqliteWrites _writes;

    public TenantIsolationStorageTests()
    {
        _database = _temp.Database;
        _writer = new SqliteRunBatchStore(_database, DurabilityMode.Normal);
        _writes = new SqliteWrites(new InlineStorageWriter(_writer), _writer); // the test is the only writer
        _tenants = new SqliteTenantStore(_database, _writes);
        _removal = new SqliteDataRemovalStore(_database, _writes);
    }

    public void Dispose()
    {
        _writer.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task DeletedProjectsKeyIsNeverGivenToTheNextProject()
    {
        var org = (await _tenants.CreateOrgAsync("keys", 1)).Org!;
        var first = (await _tenants.CreateProjectAsync(org.Key, "first", 1)).Project!;
        Assert.NotNull(await _removal.BeginProjectDeletionAsync(first.Key, 2));
        await _removal.DeleteProjectAsync(first.Key);

        var next = (await _tenants.CreateProjectAsync(org.Key, "next", 3)).Project!;
        Assert.True(next.Key > first.Key, $"the next project got key {next.Key}; the deleted one had {first.Key}");
    }

    [Fact]
    public async Task ProjectBeingDeletedIsNotFoundTakesNoTokenAndItsTokensCountAsRevoked()
    {
        var org = (await _tenants.CreateOrgAsync("marked", 1)).Org!;
        var project = (await _tenants.CreateProjectAsync(org.Key, "p", 1)).Project!;
        var issuer = new FastIngest.Auth.TokenIssuer(_tenants, TimeProvider.System, new FastIngest.Auth.SecretHasher(1024, 1));
        var (_, stored) = (await issuer.IssueUnpooledAsync(FastIngest.Auth.TokenScope.Ingest, org.Key, project.Key, null, null))!.Value;

        var revoked = await _removal.BeginProjectDeletionAsync(project.Key, 5);

        Assert.Equal([stored.Id], revoked);
        Assert.Null(await _tenants.FindProjectAsync(project.Id));
        Assert.NotNull((await _tenants.FindTokenAsync(stored.Id))!.RevokedAtMs);
        Assert.Null(await issuer.IssueUnpooledAsync(FastIngest.Auth.TokenScope.Ingest, org.Key, project.Key, null, null));
        Assert.Null(await _removal.BeginProjectDeletionAsync(project.Key, 6)); // a second deletion finds nothing to start
    }

    [Fact]
    public async Task OrgBeingDeletedTakesNoNewProjectAndEveryTokenOfItCountsAsRevoked()
    {
        var org = (await _tenants.CreateOrgAsync("org-marked", 1)).Org!;
        var project = (await _tenants.CreateProjectAsync(org.Key, "p", 1)).Project!;
        var issuer = new FastIngest.Auth.TokenIssuer(_tenants, TimeProvider.System, new FastIngest.Auth.SecretHasher(1024, 1));
        var (_, orgToken) = (await issuer.IssueUnpooledAsync(FastIngest.Auth.TokenScope.Org, org.Key, null, null, null))!.Value;
        var (_, projectToken) = (await issuer.IssueUnpooledAsync(FastIngest.Auth.TokenScope.Read, org.Key, project.Key, null, null))!.Value;

        var (projects, tokens) = (await _removal.BeginOrgDeletionAsync(org.Key, 5))!.Value;

        Assert.Equal([project.Key], projects);
        Assert.Equal(new[] { orgToken.Id, projectToken.Id }.Order(), tokens.Order());
        Assert.Equal(CreateResult.ParentNotFound, (await _tenants.CreateProjectAsync(org.Key, "late", 6)).Result);
        Assert.Null(await _tenants.FindOrgAsync(org.Id));
        Assert.Null(await _tenants.FindProjectAsync(project.Id));
    }

    [Fact]
    public async Task NameOfAProjectOrOrgBeingDeletedIsFreeAtOnce()
    {
        var org = (await _tenants.CreateOrgAsync("reused-name", 1)).Org!;
        var project = (await _tenants.CreateProjectAsync(org.Key, "same", 1)).Project!;
        Assert.Equal(CreateResult.DuplicateName, (await _tenants.CreateProjectAsync(org.Key, "same", 2)).Result);

        await _removal.BeginProjectDeletionAsync(project.Key, 3);
        Assert.Equal(CreateResult.Created, (await _tenants.CreateProjectAsync(org.Key, "same", 4)).Result);

        await _removal.BeginOrgDeletionAsync(org.Key, 5);
        Assert.Equal(CreateResult.Created, (await _tenants.CreateOrgAsync("reused-name", 6)).Result);
    }

    [Fact]
    public async Task RunOfAGoneProjectIsRefusedAloneAndTheRestOfItsBatchCommits()
    {
        var org = (await _tenants.CreateOrgAsync("batch", 1)).Org!;
        var live = (await _tenants.CreateProjectAsync(org.Key, "live", 1)).Project!;
        var deleting = (await _tenants.CreateProjectAsync(org.Key, "deleting", 1)).Project!;
        var removed = (await _tenants.CreateProjectAsync(org.Key, "removed", 1)).Project!;
        await _removal.BeginProjectDeletionAsync(deleting.Key, 2);
        await _removal.BeginProjectDeletionAsync(removed.Key, 2);
        await _removal.DeleteProjectAsync(removed.Key); // its row is gone: an insert would break the foreign key

        using var store = new SqliteRunBatchStore(_database, DurabilityMode.Normal);
        RunRecord[] runs = [Run(live.Key, "a"), Run(deleting.Key, "b"), Run(removed.Key, "c"), Run(live.Key, "d")];
        var outcomes = new RunWriteOutcome[runs.Length];
        store.Commit(runs, outcomes);

        Assert.Equal([RunWriteOutcome.Created, RunWriteOutcome.ProjectGone, RunWriteOutcome.ProjectGone, RunWriteOutcome.Created], outcomes);
        Assert.Equal(2L, Scalar("SELECT count(*) FROM test_runs;"));
    }

    [Fact]
    public async Task RunThatBreaksAConstraintFailsAloneAndTheOthersCommitWithTheirTestCases()
    {
        var org = (await _tenants.CreateOrgAsync("constraint", 1)).Org!;
        var project = (await _tenants.CreateProjectAsync(org.Key, "p", 1)).Project!;
        var good = new TestCase("s", "ok", null, TestCaseStatus.Passed, 1, 1, null);
        var broken = new TestCase("s", null!, null, TestCaseStatus.Passed, 1, 1, null); // name is NOT NULL

        using var store = new SqliteRunBatchStore(_database, DurabilityMode.Normal);
        var fresh = new TestCase("s", "fresh", null, TestCaseStatus.Passed, 1, 1, "a message first seen in the broken run");
        RunRecord[] runs = [Run(project.Key, "before", [good]), Run(project.Key, "broken", [good, fresh, broken]), Run(project.Key, "after", [good, good with { Attempt = 2 }])];
        var outcomes = new RunWriteOutcome[runs.Length];
        store.Commit(runs, outcomes);

        Assert.Equal([RunWriteOutcome.Created, RunWriteOutcome.Failed, RunWriteOutcome.Created], outcomes);
        Assert.Equal(2L, Scalar("SELECT count(*) FROM test_runs;"));
        Assert.Equal(0L, Scalar("SELECT count(*) FROM test_runs WHERE run_id = 'broken';"));
        Assert.Equal(3L, Scalar("SELECT count(*) FROM executions;"));
        Assert.Equal(1L, Scalar("SELECT count(*) FROM tests;")); // the broken run's tests left no trace
        Assert.Equal(0L, Scalar("SELECT count(*) FROM failure_messages;"));

        // The ids the broken run's savepoint rolled back must not linger in the writer's caches.
        RunRecord[] later = [Run(project.Key, "later", [fresh])];
        store.Commit(later, new RunWriteOutcome[1]);
        Assert.Equal(1L, Scalar("SELECT count(*) FROM executions AS e JOIN tests AS t ON t.id = e.test_id WHERE t.name = 'fresh';"));
        Assert.Equal(1L, Scalar("SELECT count(*) FROM executions AS e JOIN failure_messages AS m ON m.id = e.message_id;"));
    }

    [Fact]
    public async Task RunStoredAfterTheNewestRunsWereDeletedIsCountedInTheRollups()
    {
        var org = (await _tenants.CreateOrgAsync("watermark", 1)).Org!;
        var project = (await _tenants.CreateProjectAsync(org.Key, "p", 1)).Project!;
        using var store = new SqliteRunBatchStore(_database, DurabilityMode.Normal);
        // The newest runs (highest ids) have the oldest timestamps, so a purge deletes exactly them.
        var day = 20_000L * 24 * 60 * 60 * 1000;
        RunRecord[] first = [Run(project.Key, "r1", timestampMs: day + 3000), Run(project.Key, "r2", timestampMs: day + 2000), Run(project.Key, "r3", timestampMs: day + 1000)];
        store.Commit(first, new RunWriteOutcome[first.Length]);
        var folder = new SqliteRollupFolder(_database, _writes, new FastIngest.TestAnalytics.TestStateRules());
        await folder.FoldRunsAsync();
        var watermark = Scalar("SELECT last_run_id FROM rollup_state;");

        Assert.Equal(1, await _removal.DeleteRunsBatchAsync(project.Key, day + 1500, 1000));
        // The race the old ClampWatermark lost: a run stored between the delete and the roll-up rebuild.
        RunRecord[] late = [Run(project.Key, "late", timestampMs: day + (2L * 24 * 60 * 60 * 1000))]; // a later day: no recount covers it
        store.Commit(late, new RunWriteOutcome[1]);
        await _removal.RebuildRollupsAfterPurgeAsync(project.Key, day + 1500);
        await folder.FoldRunsAsync();

        var lateId = Scalar("SELECT id FROM test_runs WHERE run_id = 'late';");
        Assert.True(lateId > watermark, $"the late run reused id {lateId} at or below the watermark {watermark}");
        var counted = Scalar($"SELECT sum(total) FROM run_daily_stats WHERE project_id = {project.Key} AND branch = '';");
        Assert.True(counted == 3, $"roll-ups count {counted} runs; 3 are stored (r1, r2, late)");
    }

    private long Scalar(string sql) => _temp.Scalar(sql);

    private static RunRecord Run(long projectKey, string runId, IReadOnlyList<TestCase>? tests = null, long timestampMs = 1_700_000_000_000) => new()
    {
        ProjectKey = projectKey,
        RunId = runId,
        Passed = true,
        DurationMs = 10,
        TimestampMs = timestampMs,
        Tests = tests,
        Fingerprint = (UInt128)runId.GetHashCode(StringComparison.Ordinal),
        ReceivedAtMs = timestampMs,
    };
}
