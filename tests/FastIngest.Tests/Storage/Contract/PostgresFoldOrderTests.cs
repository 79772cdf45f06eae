using FastIngest.Configuration;
using FastIngest.Ingest;
using FastIngest.Observability;
using FastIngest.Storage;
using FastIngest.Storage.Postgres;
using FastIngest.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Storage.Contract;

/// <summary>
/// Nodes commit out of key order: a run with a lower key can become visible after a later run of the same commit was
/// already folded. Flaky-commit detection must still see the pair, once.
/// </summary>
public sealed class PostgresFoldOrderTests
{
    private const long Day = 24L * 60 * 60 * 1000;
    private static readonly long s_now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    [Fact]
    public async Task ARunCommittedAfterALaterRunOfItsCommitWasFoldedStillMakesTheCommitFlakyOnce()
    {
        await using var database = PostgresDatabase.Create(await PostgresCluster.CreateDatabaseAsync("foldorder"));
        await database.MigrateAsync();
        var tenants = new PostgresTenantStore(database);
        var org = (await tenants.CreateOrgAsync("order", 1)).Org!;
        var project = (await tenants.CreateProjectAsync(org.Key, "order", 1)).Project!.Key;
        var options = new ServerOptions { Listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), DataDirectory = Path.GetTempPath() };
        await using var writer = new RunBatchWriter(new PostgresRunBatchStore(database), options, new ServerMetrics(), NullLogger<RunBatchWriter>.Instance);
        var rules = new FastIngest.TestAnalytics.TestStateRules();
        var rollups = new PostgresTestRollups(database, rules, NullLogger<PostgresTestRollups>.Instance);
        var queries = new PostgresTestQueries(database, rollups);

        // J fails the test on the commit; K, stored after it (a higher key), passes it.
        await IngestAsync(writer, Run(project, "j", TestCaseStatus.Failed));
        await IngestAsync(writer, Run(project, "k", TestCaseStatus.Passed));
        var j = await ScalarAsync(database, $"SELECT id FROM test_runs WHERE run_id = 'j' AND project_id = {project};");

        // As if J's transaction had not committed yet: K alone is folded (a pass with no failure before it: no flake).
        await ScalarAsync(database, $"DELETE FROM runs_to_fold WHERE run_key = {j};");
        await rollups.FoldAsync();
        Assert.Equal(0, (await TotalsAsync(queries, project)).FlakyCommits);

        // J becomes visible and is folded: its failure meets K's pass on the commit, already folded with a higher key.
        await ScalarAsync(database, $"INSERT INTO runs_to_fold (run_key) VALUES ({j});");
        await rollups.FoldAsync();
        var totals = await TotalsAsync(queries, project);
        Assert.True(totals.FlakyCommits == 1, $"flaky commits after folding out of order: {totals.FlakyCommits} ({totals})");

        await rollups.FoldAsync(); // nothing queued: nothing counted again
        Assert.Equal(1, (await TotalsAsync(queries, project)).FlakyCommits);
    }

    private static RunRecord Run(long project, string runId, TestCaseStatus status) => new()
    {
        ProjectKey = project,
        RunId = runId,
        Passed = status == TestCaseStatus.Passed,
        DurationMs = 10,
        TimestampMs = s_now - Day,
        Branch = "main",
        CommitSha = "c0ffee",
        Counts = new RunCounts(1, status == TestCaseStatus.Passed ? 1 : 0, status == TestCaseStatus.Passed ? 0 : 1, 0),
        Tests = [new TestCase("suite", "wobbly", null, status, 10, 1, status == TestCaseStatus.Passed ? null : "boom")],
        Fingerprint = (UInt128)(ulong)runId.GetHashCode(StringComparison.Ordinal),
        ReceivedAtMs = s_now,
    };

    private static async Task IngestAsync(RunBatchWriter writer, RunRecord run)
    {
        Assert.True(writer.TryPublish(run, out var completion), "the writer's queue refused the run");
        var result = await completion;
        Assert.True(result is { Committed: true, Outcome: RunWriteOutcome.Created }, $"run {run.RunId}: {result}");
    }

    private static async Task<TestTotals> TotalsAsync(PostgresTestQueries queries, long project) =>
        Assert.Single(await queries.WindowTotalsAsync(project, "", DailyRollups.DayOf(s_now) - 30));

    private static async Task<long> ScalarAsync(PostgresDatabase database, string sql)
    {
        await using var command = database.DataSource.CreateCommand(sql);
        return await command.ExecuteScalarAsync() is long value ? value : -1;
    }
}
