using FastIngest.Storage;

namespace FastIngest.Tests.Storage.Contract;

/// <summary>
/// What every backend's ingest path promises (through the batch writer, as the server runs it): insert-if-absent,
/// a retry is a duplicate and changed content a conflict that changes nothing, a gone project's run is refused
/// alone, shards merge into one run, tests and failure messages are stored once per project. Run against SQLite and
/// PostgreSQL by the subclasses below; races go through two nodes.
/// </summary>
public abstract class RunStoreContract : IAsyncLifetime
{
    private static readonly TestCase[] s_cases =
    [
        new("suite.A", "passes", "a.cs", TestCaseStatus.Passed, 10, 1, null),
        new("suite.A", "fails", "a.cs", TestCaseStatus.Failed, 20, 1, "connection refused after 3012 ms"),
        new("suite.A", "fails", "a.cs", TestCaseStatus.Passed, 15, 2, null),
        new("suite.B", "errors", null, TestCaseStatus.Error, 5, 1, "connection refused after 2871 ms"),
        new("suite.B", "skipped", null, TestCaseStatus.Skipped, 0, 1, null),
    ];

    private IStorageBackend _node = null!;
    private long _project;

    protected abstract Task<IStorageBackend> CreateBackendAsync();

    public async Task InitializeAsync()
    {
        _node = await CreateBackendAsync();
        var org = (await _node.Tenants.CreateOrgAsync("runs", 1)).Org!;
        _project = (await _node.Tenants.CreateProjectAsync(org.Key, "runs", 1)).Project!.Key;
    }

    public async Task DisposeAsync() => await _node.DisposeAsync();

    [Fact]
    public async Task ARetryIsADuplicateAndChangedContentIsAConflictThatChangesNothing()
    {
        Assert.Equal(RunWriteOutcome.Created, await IngestAsync(_node, Run("r-1", fingerprint: 1, tests: s_cases)));
        Assert.Equal(RunWriteOutcome.Duplicate, await IngestAsync(_node, Run("r-1", fingerprint: 1, tests: s_cases)));
        Assert.Equal(RunWriteOutcome.Conflict, await IngestAsync(_node, Run("r-1", fingerprint: 2, passed: false)));

        Assert.Equal(1, await Count("test_runs"));
        Assert.Equal(1, await StatusOfAsync("r-1")); // still the stored, passed run
        Assert.Equal(s_cases.Length, await Count("executions"));
    }

    [Fact]
    public async Task ARunWithoutOptionalFieldsStoresNullsAfterOneThatHadThemAll()
    {
        // The writer binds only the values a run has; nothing of the runs before it may stay bound: not the
        // counts and build of a plain run, nor a shard's head key, shard count and prior state.
        Assert.Equal(RunWriteOutcome.Created, await IngestAsync(_node, Run("full", fingerprint: 1) with
        {
            Counts = new RunCounts(5, 3, 1, 1),
            BuildUrl = "https://ci.example/build/1",
        }));
        Assert.Equal(RunWriteOutcome.Created, await IngestAsync(_node, Run("sharded", fingerprint: 3) with { Shard = "job-1" }));
        Assert.Equal(RunWriteOutcome.Created, await IngestAsync(_node, Run("sharded", fingerprint: 4) with { Shard = "job-2" }));
        Assert.Equal(1, await _node.ScalarAsync("SELECT count(*) FROM test_runs WHERE run_id = 'sharded' AND head_key IS NOT NULL AND prior_status IS NOT NULL;"));
        Assert.Equal(RunWriteOutcome.Created, await IngestAsync(_node, Run("bare", fingerprint: 2) with { Branch = null, CommitSha = null }));

        var nulls = await _node.ScalarAsync("""
            SELECT count(*) FROM test_runs WHERE run_id = 'bare' AND branch IS NULL AND commit_sha IS NULL AND count_total IS NULL
                AND count_passed IS NULL AND count_failed IS NULL AND count_skipped IS NULL AND build_url IS NULL
                AND head_key IS NULL AND shards IS NULL AND prior_status IS NULL AND prior_duration_ms IS NULL;
            """);
        Assert.True(nulls == 1, $"the bare run kept a value of the run before it: {nulls} rows with every optional field NULL");
        Assert.Equal(1, await _node.ScalarAsync("SELECT count(*) FROM test_runs WHERE run_id = 'full' AND count_total = 5 AND build_url IS NOT NULL;"));
    }

    [Fact]
    public async Task FiftyIdenticalUploadsRacingOnTwoNodesCreateOneRun()
    {
        await using var second = await _node.SecondNodeAsync();
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 50).Select(i =>
            IngestAsync(i % 2 == 0 ? _node : second, Run("raced", fingerprint: 7, tests: s_cases))));

        Assert.Equal(1, outcomes.Count(static o => o == RunWriteOutcome.Created));
        Assert.Equal(49, outcomes.Count(static o => o == RunWriteOutcome.Duplicate));
        Assert.Equal(1, await Count("test_runs"));
        Assert.Equal(s_cases.Length, await Count("executions"));
    }

    [Fact]
    public async Task TestsAndFailureMessagesAreStoredOncePerProjectWhateverTheRunsAndNodes()
    {
        await using var second = await _node.SecondNodeAsync();
        await Task.WhenAll(Enumerable.Range(0, 20).Select(async i =>
            Assert.Equal(RunWriteOutcome.Created, await IngestAsync(i % 2 == 0 ? _node : second, Run($"many-{i}", fingerprint: 100 + i, tests: s_cases)))));

        Assert.Equal(4, await Count("tests")); // (suite.A, passes), (suite.A, fails), (suite.B, errors), (suite.B, skipped)
        Assert.Equal(2, await Count("failure_messages"));
        Assert.Equal(1, await Count("failure_groups")); // the messages differ only in a number: one pattern
        Assert.Equal(20 * s_cases.Length, await Count("executions"));
        Assert.Equal(20 * 2, await _node.ScalarAsync("SELECT count(*) FROM executions WHERE message_id IS NOT NULL;"));
    }

    [Fact]
    public async Task ARunOfAProjectBeingDeletedIsRefusedAloneInItsBatch()
    {
        var org = (await _node.Tenants.CreateOrgAsync("gone", 1)).Org!;
        var gone = (await _node.Tenants.CreateProjectAsync(org.Key, "gone", 1)).Project!.Key;
        await _node.ScalarAsync($"UPDATE projects SET deleted_at = 5 WHERE id = {gone};");

        var outcomes = await Task.WhenAll(
            IngestAsync(_node, Run("kept", fingerprint: 1)),
            IngestAsync(_node, Run("refused", fingerprint: 1) with { ProjectKey = gone }),
            IngestAsync(_node, Run("also-kept", fingerprint: 1)));

        Assert.Equal([RunWriteOutcome.Created, RunWriteOutcome.ProjectGone, RunWriteOutcome.Created], outcomes);
        Assert.Equal(0, await _node.ScalarAsync($"SELECT count(*) FROM test_runs WHERE project_id = {gone};"));
    }

    [Fact]
    public async Task ShardsArrivingOnTwoNodesMergeIntoOneRun()
    {
        await using var second = await _node.SecondNodeAsync();
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => IngestAsync(i % 2 == 0 ? _node : second,
            Run("sharded", fingerprint: 1000 + i, passed: i != 5, tests: s_cases[..2]) with
            {
                Shard = $"job-{i}",
                DurationMs = 100 + i,
                Counts = new RunCounts(2, 1, 1, 0),
            })));

        Assert.All(outcomes, static o => Assert.Equal(RunWriteOutcome.Created, o));
        Assert.Equal(12, await _node.ScalarAsync("SELECT shards FROM test_runs WHERE run_id = 'sharded' AND shard = '';"));
        Assert.Equal(24, await _node.ScalarAsync("SELECT count_total FROM test_runs WHERE run_id = 'sharded' AND shard = '';"));
        Assert.Equal(111, await _node.ScalarAsync("SELECT duration_ms FROM test_runs WHERE run_id = 'sharded' AND shard = '';"));
        Assert.Equal(1, await _node.ScalarAsync("SELECT count(*) FROM test_runs WHERE run_id = 'sharded' AND shard = '' AND status = 'failed';"));
        Assert.Equal(12 * 2, await Count("executions"));
        var day = await _node.Runs.DailyStatsAsync(_project, "", 20_454, 20_454); // 2026-01-01: the run is counted once, merged
        Assert.Equal([(1L, 0L, 1L, 111L)], day.Select(static d => (d.Total, d.Passed, d.Failed, d.DurationMaxMs)));

        Assert.Equal(RunWriteOutcome.Duplicate, await IngestAsync(_node, Run("sharded", fingerprint: 1003, tests: s_cases[..2]) with { Shard = "job-3" }));
        Assert.Equal(RunWriteOutcome.Conflict, await IngestAsync(second, Run("sharded", fingerprint: 9, tests: s_cases[..2]) with { Shard = "job-3" }));
        Assert.Equal(RunWriteOutcome.ShardMismatch, await IngestAsync(_node, Run("sharded", fingerprint: 1)));
        Assert.Equal(RunWriteOutcome.ShardMismatch, await IngestAsync(_node, Run("sharded", fingerprint: 1) with { Shard = "job-x", Branch = "other" }));

        Assert.Equal(RunWriteOutcome.Created, await IngestAsync(_node, Run("whole", fingerprint: 1)));
        Assert.Equal(RunWriteOutcome.ShardMismatch, await IngestAsync(_node, Run("whole", fingerprint: 1) with { Shard = "job-1" }));
    }

    [Fact]
    public async Task IngestRacingTheProjectsDeletionStoresOnlyWhatItAcknowledgedAndNothingAfter()
    {
        await using var second = await _node.SecondNodeAsync();
        var uploads = Enumerable.Range(0, 200).Select(i => IngestAsync(i % 2 == 0 ? _node : second, Run($"race-{i}", fingerprint: i, tests: s_cases[..1]))).ToList();
        await Task.Delay(5);
        Assert.NotNull(await _node.Removal.BeginProjectDeletionAsync(_project, 99));
        var after = await IngestAsync(second, Run("after-deletion", fingerprint: 1));
        var outcomes = await Task.WhenAll(uploads);

        Assert.Equal(RunWriteOutcome.ProjectGone, after);
        Assert.All(outcomes, static o => Assert.True(o is RunWriteOutcome.Created or RunWriteOutcome.ProjectGone, $"got {o}"));
        Assert.Equal(outcomes.Count(static o => o == RunWriteOutcome.Created), await Count("test_runs"));
    }

    [Fact]
    public async Task AnOverQuotaUploadStoresNothingButStillGetsTheStoredRunsAnswer()
    {
        Assert.Equal(RunWriteOutcome.Created, await IngestAsync(_node, Run("quota", fingerprint: 1)));
        Assert.Equal(RunWriteOutcome.Duplicate, await IngestAsync(_node, Run("quota", fingerprint: 1) with { LookupOnly = true }));
        Assert.Equal(RunWriteOutcome.Conflict, await IngestAsync(_node, Run("quota", fingerprint: 2) with { LookupOnly = true }));
        Assert.Equal(RunWriteOutcome.OverQuota, await IngestAsync(_node, Run("new", fingerprint: 1, tests: s_cases) with { LookupOnly = true }));
        Assert.Equal(1, await Count("test_runs"));
        Assert.Equal(0, await Count("executions"));
    }

    private Task<long> Count(string table) => _node.ScalarAsync($"SELECT count(*) FROM {table};");

    private Task<long> StatusOfAsync(string runId) =>
        _node.ScalarAsync($"SELECT CASE WHEN status = 'passed' THEN 1 ELSE 0 END FROM test_runs WHERE run_id = '{runId}';");

    private static async Task<RunWriteOutcome> IngestAsync(IStorageBackend node, RunRecord run)
    {
        Assert.True(node.Writer.TryPublish(run, out var completion), "the writer's queue refused the run");
        var result = await completion;
        Assert.True(result.Committed, $"run {run.RunId} was not committed");
        return result.Outcome;
    }

    private RunRecord Run(string runId, long fingerprint, bool passed = true, TestCase[]? tests = null) => new()
    {
        ProjectKey = _project,
        RunId = runId,
        Passed = passed,
        DurationMs = 100,
        TimestampMs = 1_767_225_600_000,
        Branch = "main",
        CommitSha = "abc123",
        Tests = tests,
        Fingerprint = (UInt128)fingerprint,
        ReceivedAtMs = 1_767_225_601_000,
    };
}

public sealed class SqliteRunStoreContract : RunStoreContract
{
    protected override Task<IStorageBackend> CreateBackendAsync() => Task.FromResult(SqliteBackend.Create());
}

public sealed class PostgresRunStoreContract : RunStoreContract
{
    protected override Task<IStorageBackend> CreateBackendAsync() => PostgresBackend.CreateAsync();
}
