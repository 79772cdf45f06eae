using FastIngest.Configuration;
using FastIngest.Storage;
using FastIngest.Storage.Sqlite;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Storage;

/// <summary>
/// The per-test fold finds the runs with test cases through the executions' key and hands only those to the fold:
/// runs without any are passed over inside SQLite, and the watermark still moves past every run exactly once.
/// </summary>
public sealed class TestFoldRangeTests : IDisposable
{
    private readonly TempSqliteDatabase _temp = new("foldrange");
    private readonly SqliteRunBatchStore _writer;
    private readonly SqliteWrites _writes;
    private readonly SqliteRollupFolder _folder;

    public TestFoldRangeTests()
    {
        _writer = new SqliteRunBatchStore(_temp.Database, DurabilityMode.Normal);
        _writes = new SqliteWrites(new InlineStorageWriter(_writer), _writer); // the test is the only writer
        _folder = new SqliteRollupFolder(_temp.Database, _writes, new FastIngest.TestAnalytics.TestStateRules());
    }

    public void Dispose()
    {
        _writer.Dispose();
        _temp.Dispose();
    }

    private long Scalar(string sql) => _temp.Scalar(sql);

    private async Task<long> NewProjectAsync(string name)
    {
        var tenants = new SqliteTenantStore(_temp.Database, _writes);
        var org = (await tenants.CreateOrgAsync(name, 1)).Org!;
        return (await tenants.CreateProjectAsync(org.Key, name, 1)).Project!.Key;
    }

    [Fact]
    public async Task RunsWithTestCasesAmongManyWithoutAreEachFoldedOnceAndTheWatermarkPassesThemAll()
    {
        var projectKey = await NewProjectAsync("fold");

        // 45,000 runs: the first 4,500 (more than two full chunks of runs with test cases) and then
        // every 997th have one test case (passing, or failing every third time), the rest none. One day, so every case
        // lands in one roll-up row.
        const int Runs = 45_000;
        var withTests = 0;
        var failures = 0;
        var batch = new List<RunRecord>();
        for (var n = 0; n < Runs; n++)
        {
            IReadOnlyList<TestCase>? tests = null;
            if (n < 4500 || n % 997 == 0)
            {
                var failed = withTests % 3 == 0;
                tests = [new TestCase("suite", "only", null, failed ? TestCaseStatus.Failed : TestCaseStatus.Passed, 5, 1, failed ? "boom" : null)];
                withTests++;
                failures += failed ? 1 : 0;
            }

            batch.Add(new RunRecord
            {
                ProjectKey = projectKey, RunId = $"r-{n}", Passed = true, DurationMs = 1, TimestampMs = 1000 + n,
                Tests = tests, Counts = tests is null ? null : new RunCounts(1, tests[0].Status == TestCaseStatus.Passed ? 1 : 0,
                    tests[0].Status == TestCaseStatus.Failed ? 1 : 0, 0),
                Fingerprint = (UInt128)n, ReceivedAtMs = 1,
            });
            if (batch.Count == 5000 || n == Runs - 1)
            {
                _writer.Commit(batch.ToArray(), new RunWriteOutcome[batch.Count]);
                batch.Clear();
            }
        }

        _writer.MakeDurable();
        Assert.Equal(new FoldProgress(Runs, Full: false), await _folder.FoldTestsAsync(int.MaxValue));

        Assert.Equal(Scalar("SELECT max(id) FROM test_runs;"), Scalar("SELECT last_run_id FROM test_rollup_state;"));
        Assert.Equal(withTests, Scalar("SELECT executions FROM test_days WHERE branch = '';"));
        Assert.Equal(failures, Scalar("SELECT failures FROM test_days WHERE branch = '';"));
        Assert.Equal(default, await _folder.FoldTestsAsync(int.MaxValue)); // nothing is folded twice
        Assert.Equal(withTests, Scalar("SELECT executions FROM test_days WHERE branch = '';"));
    }

    [Fact]
    public async Task ChunksCutByTheirExecutionsAndGapsFromDeletedRunsLoseAndRepeatNothing()
    {
        var projectKey = await NewProjectAsync("cut");

        // 6,000 runs: every other one has the same 30 passing test cases (90,000 executions: a chunk stops at
        // 50,000), the rest none; then 1,000 plain runs and 100 with tests are deleted, leaving gaps in the ids.
        const int Runs = 6_000, Cases = 30;
        var cases = Enumerable.Range(0, Cases).Select(static i => new TestCase("suite", $"case-{i}", null, TestCaseStatus.Passed, 3, 1, null)).ToArray();
        var records = Enumerable.Range(0, Runs).Select(n => new RunRecord
        {
            ProjectKey = projectKey, RunId = $"c-{n}", Passed = true, DurationMs = 1, TimestampMs = 1000 + n,
            Tests = n % 2 == 0 ? cases : null, Counts = n % 2 == 0 ? new RunCounts(Cases, Cases, 0, 0) : null,
            Fingerprint = (UInt128)n, ReceivedAtMs = 1,
        }).ToArray();
        _writer.Commit(records, new RunWriteOutcome[Runs]);
        _writer.MakeDurable();
        using (var connection = _temp.Database.OpenWriter())
        using (var delete = connection.Rent("""
            DELETE FROM test_runs WHERE id IN (SELECT id FROM (SELECT id, CAST(substr(run_id, 3) AS INTEGER) AS n FROM test_runs)
                                               WHERE (n BETWEEN 2001 AND 3999 AND n % 2 = 1) OR (n BETWEEN 4000 AND 4198 AND n % 2 = 0));
            """))
        {
            Assert.Equal(1_100, delete.ExecuteNonQuery());
        }

        var progress = await _folder.FoldTestsAsync(int.MaxValue);
        Assert.True(progress.Moved > 0 && !progress.Full, $"the fold left runs pending or moved nothing: {progress}");

        const long withTests = Runs / 2 - 100;
        Assert.Equal(Scalar("SELECT max(id) FROM test_runs;"), Scalar("SELECT last_run_id FROM test_rollup_state;"));
        Assert.Equal(Cases, Scalar("SELECT count(*) FROM test_days WHERE branch = '';"));
        Assert.Equal(Cases, Scalar($"SELECT count(*) FROM test_days WHERE branch = '' AND executions = {withTests};"));
        Assert.Equal(default, await _folder.FoldTestsAsync(int.MaxValue));
    }

    [Theory]
    [InlineData(1_999)]
    [InlineData(2_000)]
    [InlineData(2_001)]
    [InlineData(4_000)]
    public async Task RunsWithTestCasesAroundAFullChunkAreFoldedOnceAndTheWatermarkReachesTheNewestRun(int withTests)
    {
        var projectKey = await NewProjectAsync("edge");
        TestCase[] one = [new TestCase("suite", "edge", null, TestCaseStatus.Passed, 3, 1, null)];
        var records = Enumerable.Range(0, withTests + 50).Select(n => new RunRecord
        {
            ProjectKey = projectKey, RunId = $"e-{n}", Passed = true, DurationMs = 1, TimestampMs = 1000 + n,
            Tests = n < withTests ? one : null, Counts = n < withTests ? new RunCounts(1, 1, 0, 0) : null,
            Fingerprint = (UInt128)n, ReceivedAtMs = 1,
        }).ToArray();
        _writer.Commit(records, new RunWriteOutcome[records.Length]);
        _writer.MakeDurable();

        var progress = await _folder.FoldTestsAsync(int.MaxValue);
        Assert.Equal(new FoldProgress(records.Length, Full: false), progress);
        Assert.Equal(Scalar("SELECT max(id) FROM test_runs;"), Scalar("SELECT last_run_id FROM test_rollup_state;"));
        Assert.Equal(withTests, Scalar("SELECT executions FROM test_days WHERE branch = '';"));
    }
}
