using Dapper;
using static FastIngest.Storage.StoredRows;
using Npgsql;

namespace FastIngest.Storage.Postgres;

/// <summary>
/// Deletions on PostgreSQL, in the same bounded batches as on SQLite (each its own short transaction, so no node's
/// ingest waits long behind one). Runs leave the daily roll-ups in the transaction that deletes them (their counts
/// and histogram buckets are taken out), so statistics stay exact while a purge runs; a day's maximum duration is
/// the one thing not recomputed, so after a purge it may still name a deleted run (percentiles are capped by it,
/// never raised by it). Per-test roll-ups are kept by whole days, as on SQLite.
/// </summary>
[DapperAot]
public sealed class PostgresDataRemovalStore : IDataRemovalStore
{
    private readonly NpgsqlDataSource _db;

    public PostgresDataRemovalStore(PostgresDatabase database) => _db = database.DataSource;

    public async ValueTask<long> CountRunsAsync(long projectKey, long? beforeMs)
    {
        await using var connection = await _db.OpenConnectionAsync();
        var before = beforeMs ?? long.MaxValue;
        return await connection.ExecuteScalarAsync<long>(
            "SELECT count(*) FROM test_runs WHERE project_id = @projectKey AND head_key IS NULL AND timestamp_ms < @before;",
            new { projectKey, before });
    }

    /// <summary>A deadlock with another node's ingest (a shard merge locks its run's head) runs the batch again.</summary>
    public async Task<int> DeleteRunsBatchAsync(long projectKey, long? beforeMs, int batchSize)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await DeleteRunsBatchOnceAsync(projectKey, beforeMs, batchSize);
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DeadlockDetected && attempt < 4)
            {
                await Task.Delay(Random.Shared.Next(1, 20 * attempt));
            }
        }
    }

    private async Task<int> DeleteRunsBatchOnceAsync(long projectKey, long? beforeMs, int batchSize)
    {
        var before = beforeMs ?? long.MaxValue;
        await using var connection = await _db.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted);
        // The oldest runs first, through the time index; a sharded run's head takes its shard rows along (their
        // executions went ahead of them). A run another node is merging a shard into is waited for (its transaction
        // is short), never skipped: a batch that found nothing would end the purge early.
        var deleted = (await connection.QueryAsync<CountedRun>(
            """
            DELETE FROM test_runs WHERE id IN (
                SELECT id FROM test_runs WHERE project_id = @projectKey AND timestamp_ms < @before AND head_key IS NULL
                ORDER BY timestamp_ms, id LIMIT @batchSize FOR UPDATE)
            RETURNING timestamp_ms AS TimestampMs, branch AS Branch, status = 'passed' AS Passed, duration_ms AS DurationMs;
            """,
            new { projectKey, before, batchSize }, transaction)).ToList();
        var rollups = new DailyRollups();
        foreach (var run in deleted)
        {
            rollups.Remove(projectKey, run.TimestampMs, run.Branch, run.Passed, run.DurationMs);
        }

        await PostgresRollups.MergeAsync(connection, transaction, rollups);
        await transaction.CommitAsync();
        return deleted.Count;
    }

    /// <summary>
    /// Deletes (some of) the executions of the next batch of runs, and takes those runs out of the per-test fold's queue
    /// in the same statement: a run that is losing its executions is never folded half-emptied.
    /// </summary>
    public async Task<int> DeleteTestCasesBatchAsync(long projectKey, long? beforeMs, int batchSize, int maxRows)
    {
        var before = beforeMs ?? long.MaxValue;
        await using var connection = await _db.OpenConnectionAsync();
        return await connection.ExecuteAsync(
            """
            WITH batch (id) AS (
                SELECT id FROM test_runs WHERE project_id = @projectKey AND timestamp_ms < @before AND head_key IS NULL
                ORDER BY timestamp_ms, id LIMIT @batchSize),
            rows_of_batch (id) AS (
                SELECT id FROM batch UNION ALL SELECT s.id FROM test_runs AS s WHERE s.head_key IN (SELECT id FROM batch)),
            unqueued AS (DELETE FROM runs_to_fold WHERE run_key IN (SELECT id FROM rows_of_batch))
            DELETE FROM executions WHERE (run_key, test_id, attempt) IN (
                SELECT run_key, test_id, attempt FROM executions WHERE run_key IN (SELECT id FROM rows_of_batch) LIMIT @maxRows);
            """,
            new { projectKey, before, batchSize, maxRows });
    }

    public async Task RebuildRollupsAfterPurgeAsync(long projectKey, long beforeMs)
    {
        // The counts are already right (each batch took its runs out); what is left is the days that are now
        // empty, and the per-test data only the purged runs used. The project's exclusive lock waits for the
        // batches in flight: none of them is about to name a message this removes.
        await using var connection = await _db.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted);
        await connection.ExecuteAsync($"SELECT {ProjectLocks.Exclusive("@projectKey")};", new { projectKey }, transaction);
        // And the per-test fold's lock: a fold that read a purged run before it went cannot write its day back after
        // the days are dropped here, nor race this on the roll-up rows (as on SQLite, where both run on the writer).
        await connection.ExecuteAsync($"SELECT pg_advisory_xact_lock({PostgresTestRollups.LockKey});", null, transaction);
        await connection.ExecuteAsync("DELETE FROM run_daily_stats WHERE project_id = @projectKey AND total <= 0;", new { projectKey }, transaction);

        // Per-test roll-ups are kept by whole days, as on SQLite: the days before the cut go; the day it falls in stays whole.
        var cutDay = DailyRollups.DayOf(beforeMs);
        await connection.ExecuteAsync("DELETE FROM test_days WHERE project_id = @projectKey AND day < @cutDay;", new { projectKey, cutDay }, transaction);
        await connection.ExecuteAsync("DELETE FROM failure_days WHERE project_id = @projectKey AND day < @cutDay;", new { projectKey, cutDay }, transaction);
        await connection.ExecuteAsync("DELETE FROM commit_failures WHERE project_id = @projectKey AND last_ms < @beforeMs;",
            new { projectKey, beforeMs }, transaction);
        await connection.ExecuteAsync(
            """
            DELETE FROM failure_messages AS m WHERE m.project_id = @projectKey
              AND NOT EXISTS (SELECT 1 FROM executions AS e WHERE e.message_id = m.id);
            """,
            new { projectKey }, transaction);
        await connection.ExecuteAsync(
            """
            DELETE FROM failure_groups AS g WHERE g.project_id = @projectKey
              AND NOT EXISTS (SELECT 1 FROM failure_messages AS m WHERE m.group_id = g.id);
            """,
            new { projectKey }, transaction);

        // Tests no roll-up and no execution names any more (their failure days and commit failures cascade).
        await connection.ExecuteAsync(
            """
            DELETE FROM tests AS t WHERE t.project_id = @projectKey
              AND NOT EXISTS (SELECT 1 FROM test_days AS d WHERE d.test_id = t.id)
              AND NOT EXISTS (SELECT 1 FROM executions AS e WHERE e.test_id = t.id);
            """,
            new { projectKey }, transaction);
        await transaction.CommitAsync();
    }

    public async Task<IReadOnlyList<string>> RevokeProjectTokensAsync(long projectKey, long nowMs)
    {
        await using var connection = await _db.OpenConnectionAsync();
        return (await connection.QueryAsync<string>(
            $"""
            WITH revoked AS (UPDATE api_tokens SET revoked_at = @nowMs WHERE project_id = @projectKey AND revoked_at IS NULL RETURNING id)
            SELECT id FROM revoked, LATERAL (SELECT {PostgresRetirementFeed.Notify("'token:' || revoked.id")}) AS sent;
            """,
            new { projectKey, nowMs })).ToList();
    }

    public async Task<IReadOnlyList<string>?> BeginProjectDeletionAsync(long projectKey, long nowMs)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted);
        // The exclusive lock waits for every batch holding the project's shared lock (their runs are in, and will be
        // deleted); a batch after it sees the project gone.
        await connection.ExecuteAsync($"SELECT {ProjectLocks.Exclusive("@projectKey")};", new { projectKey }, transaction);
        if (await connection.ExecuteAsync("UPDATE projects SET deleted_at = @nowMs WHERE id = @projectKey AND deleted_at IS NULL;",
            new { projectKey, nowMs }, transaction) == 0)
        {
            return null;
        }

        var revoked = (await connection.QueryAsync<string>(
            "UPDATE api_tokens SET revoked_at = @nowMs WHERE project_id = @projectKey AND revoked_at IS NULL RETURNING id;",
            new { projectKey, nowMs }, transaction)).ToList();
        await connection.ExecuteAsync($"SELECT {PostgresRetirementFeed.Notify("'project:' || @projectKey::text")};", new { projectKey }, transaction);
        await transaction.CommitAsync();
        return revoked;
    }

    public async Task<(IReadOnlyList<long> ProjectKeys, IReadOnlyList<string> TokenIds)?> BeginOrgDeletionAsync(long orgKey, long nowMs)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted);
        if (await connection.ExecuteAsync("UPDATE orgs SET deleted_at = @nowMs WHERE id = @orgKey AND deleted_at IS NULL;",
            new { orgKey, nowMs }, transaction) == 0)
        {
            return null;
        }

        // Every project's exclusive lock, in key order (as batches take them), before the projects are marked.
        foreach (var projectKey in await connection.QueryAsync<long>("SELECT id FROM projects WHERE org_id = @orgKey ORDER BY id;", new { orgKey }, transaction))
        {
            await connection.ExecuteAsync($"SELECT {ProjectLocks.Exclusive("@projectKey")};", new { projectKey }, transaction);
        }

        await connection.ExecuteAsync("UPDATE projects SET deleted_at = @nowMs WHERE org_id = @orgKey AND deleted_at IS NULL;", new { orgKey, nowMs }, transaction);
        var projects = (await connection.QueryAsync<long>("SELECT id FROM projects WHERE org_id = @orgKey;", new { orgKey }, transaction)).ToList();
        var revoked = (await connection.QueryAsync<string>(
            """
            UPDATE api_tokens SET revoked_at = @nowMs
            WHERE (org_id = @orgKey OR project_id IN (SELECT id FROM projects WHERE org_id = @orgKey)) AND revoked_at IS NULL
            RETURNING id;
            """,
            new { orgKey, nowMs }, transaction)).ToList();
        await connection.ExecuteAsync($"SELECT {PostgresRetirementFeed.Notify("'org:' || @orgKey::text")};", new { orgKey }, transaction);
        await transaction.CommitAsync();
        return (projects, revoked);
    }

    public async ValueTask<(IReadOnlyList<long> ProjectKeys, IReadOnlyList<long> OrgKeys)> UnfinishedDeletionsAsync(long beganBeforeMs)
    {
        await using var connection = await _db.OpenConnectionAsync();
        var projects = (await connection.QueryAsync<long>("SELECT id FROM projects WHERE deleted_at < @beganBeforeMs;", new { beganBeforeMs })).ToList();
        var orgs = (await connection.QueryAsync<long>("SELECT id FROM orgs WHERE deleted_at < @beganBeforeMs;", new { beganBeforeMs })).ToList();
        return (projects, orgs);
    }

    public async ValueTask<IReadOnlyList<long>> ProjectKeysOfAsync(long orgKey)
    {
        await using var connection = await _db.OpenConnectionAsync();
        return (await connection.QueryAsync<long>("SELECT id FROM projects WHERE org_id = @orgKey;", new { orgKey })).ToList();
    }

    /// <summary>Per-test data of a project can run to millions of rows: it goes in bounded batches before the project row.</summary>
    private static readonly string[] s_projectDataBatches =
    [
        "DELETE FROM executions WHERE (run_key, test_id, attempt) IN (SELECT e.run_key, e.test_id, e.attempt FROM executions AS e JOIN tests AS t ON t.id = e.test_id WHERE t.project_id = @projectKey LIMIT 20000);",
        "DELETE FROM test_days WHERE (project_id, branch, day, test_id) IN (SELECT project_id, branch, day, test_id FROM test_days WHERE project_id = @projectKey LIMIT 20000);",
        "DELETE FROM failure_days WHERE (project_id, day, group_id, test_id) IN (SELECT project_id, day, group_id, test_id FROM failure_days WHERE project_id = @projectKey LIMIT 20000);",
        "DELETE FROM commit_failures WHERE (project_id, commit_sha, test_id) IN (SELECT project_id, commit_sha, test_id FROM commit_failures WHERE project_id = @projectKey LIMIT 20000);",
        "DELETE FROM tests WHERE id IN (SELECT id FROM tests WHERE project_id = @projectKey LIMIT 20000);",
        "DELETE FROM failure_messages WHERE id IN (SELECT id FROM failure_messages WHERE project_id = @projectKey LIMIT 20000);",
        "DELETE FROM failure_groups WHERE id IN (SELECT id FROM failure_groups WHERE project_id = @projectKey LIMIT 20000);",
        "DELETE FROM quarantine_log WHERE id IN (SELECT id FROM quarantine_log WHERE project_id = @projectKey LIMIT 20000);",
    ];

    public async Task DeleteProjectAsync(long projectKey, CancellationToken cancellation = default)
    {
        await using var connection = await _db.OpenConnectionAsync(cancellation);
        foreach (var sql in s_projectDataBatches)
        {
            while (await DeleteBatchRetryingAsync(connection, sql, projectKey) > 0)
            {
                cancellation.ThrowIfCancellationRequested(); // the deletion is final; the retention job finishes it
            }
        }

        // What is left cascades from the project row: its roll-ups, quarantine, policy and tokens (all small).
        await connection.ExecuteAsync("DELETE FROM projects WHERE id = @projectKey;", new { projectKey });
    }

    /// <summary>One batch of a deletion; a deadlock with a fold or an ingest in flight runs it again.</summary>
    private static async Task<int> DeleteBatchRetryingAsync(NpgsqlConnection connection, string sql, long projectKey)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await connection.ExecuteAsync(sql, new { projectKey });
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DeadlockDetected && attempt < 4)
            {
                await Task.Delay(Random.Shared.Next(1, 20 * attempt));
            }
        }
    }

    public async Task<IReadOnlyList<string>> DeleteOrgAsync(long orgKey)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted);
        var tokens = (await connection.QueryAsync<string>("DELETE FROM api_tokens WHERE org_id = @orgKey RETURNING id;", new { orgKey }, transaction)).ToList();
        await connection.ExecuteAsync("DELETE FROM orgs WHERE id = @orgKey;", new { orgKey }, transaction);
        await transaction.CommitAsync();
        return tokens;
    }

    /// <summary>PostgreSQL's backups are its own tools' (pg_dump, base backups, the provider's snapshots), not a file this server writes.</summary>
    public string? BackupUnavailableReason =>
        "With PostgreSQL, back up the database with pg_dump, base backups or your provider's snapshots; POST /v1/admin/backup copies the embedded SQLite file only.";

    public Task<long> BackupAsync(string path, CancellationToken cancellationToken) =>
        Task.FromException<long>(new NotSupportedException(BackupUnavailableReason));
}
