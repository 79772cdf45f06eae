using Dapper;
using static FastIngest.Storage.StoredRows;

namespace FastIngest.Storage.Sqlite;

[DapperAot]
public sealed class SqliteDataRemovalStore : IDataRemovalStore
{
    private readonly SqliteDatabase _database;
    private readonly SqliteWrites _writes;

    public SqliteDataRemovalStore(SqliteDatabase database, SqliteWrites writes)
    {
        _database = database;
        _writes = writes;
    }

    public ValueTask<long> CountRunsAsync(long projectKey, long? beforeMs)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return new(connection.ExecuteScalar<long>(
            "SELECT count(*) FROM test_runs WHERE project_id = @projectKey AND head_key IS NULL AND (@beforeMs IS NULL OR timestamp_ms < @beforeMs);",
            new { projectKey, beforeMs }));
    }

    public Task<int> DeleteRunsBatchAsync(long projectKey, long? beforeMs, int batchSize) =>
        _writes.RunAsync("purge_runs", connection => DeleteBatch(connection, projectKey, beforeMs, batchSize));

    public Task<int> DeleteTestCasesBatchAsync(long projectKey, long? beforeMs, int batchSize, int maxRows)
    {
        return _writes.RunAsync("purge_test_cases", connection =>
        {
            // The same run selection as DeleteBatch (oldest first, through the time index), then one chunk of
            // their cases by primary key.
            // A sharded run's executions hang off its shard rows: those of the batch's runs go too, so deleting
            // a run never cascades into an unbounded delete.
            var before = beforeMs ?? long.MaxValue;
            return connection.Execute(
                """
                WITH batch (id) AS (
                    SELECT id FROM test_runs WHERE project_id = @projectKey AND timestamp_ms < @before AND head_key IS NULL
                    ORDER BY timestamp_ms, id LIMIT @batchSize),
                rows_of_batch (id) AS (
                    SELECT id FROM batch UNION ALL SELECT s.id FROM test_runs AS s WHERE s.head_key IN (SELECT id FROM batch))
                DELETE FROM executions WHERE (run_key, test_id, attempt) IN (
                    SELECT run_key, test_id, attempt FROM executions WHERE run_key IN (SELECT id FROM rows_of_batch)
                    LIMIT @maxRows);
                """,
                new { projectKey, before, batchSize, maxRows });
        });
    }

    private static int DeleteBatch(Microsoft.Data.Sqlite.SqliteConnection connection, long projectKey, long? beforeMs, int batchSize)
    {
        // The oldest runs first, through the time index (which holds runs only); each call is its own short
        // transaction. A sharded run's head takes its shard rows along (their executions are gone already).
        var before = beforeMs ?? long.MaxValue;
        return connection.Execute(
            """
            DELETE FROM test_runs WHERE id IN (
                SELECT id FROM test_runs WHERE project_id = @projectKey AND timestamp_ms < @before AND head_key IS NULL
                ORDER BY timestamp_ms, id LIMIT @batchSize);
            """,
            new { projectKey, before, batchSize });
    }

    public Task RebuildRollupsAfterPurgeAsync(long projectKey, long beforeMs) =>
        _writes.RunAsync("rebuild_rollups_after_purge", connection => RebuildRollups(connection, projectKey, beforeMs));

    private void RebuildRollups(Microsoft.Data.Sqlite.SqliteConnection connection, long projectKey, long beforeMs)
    {
        var cutDay = DailyRollups.DayOf(beforeMs);
        using var transaction = connection.BeginTransaction(deferred: false);
        // One transaction, so no run can slip between "folded" and "recounted" and be counted twice:
        // first fold whatever is pending, then drop the purged days and recount the day the cut falls in.
        while (SqliteRollupFolder.FoldChunk(connection, transaction) > 0)
        {
        }

        connection.Execute("DELETE FROM run_daily_stats WHERE project_id = @projectKey AND day <= @cutDay;", new { projectKey, cutDay }, transaction);

        // Per-test roll-ups are kept by whole days: the days before the cut go; the day it falls in stays whole.
        connection.Execute("DELETE FROM test_days WHERE project_id = @projectKey AND day < @cutDay;", new { projectKey, cutDay }, transaction);
        connection.Execute("DELETE FROM failure_days WHERE project_id = @projectKey AND day < @cutDay;", new { projectKey, cutDay }, transaction);
        connection.Execute("DELETE FROM commit_failures WHERE project_id = @projectKey AND last_ms < @beforeMs;", new { projectKey, beforeMs }, transaction);
        RemoveOrphans(connection, transaction, projectKey);
        var dayStart = cutDay * 24L * 60 * 60 * 1000;
        var dayEnd = dayStart + (24L * 60 * 60 * 1000);
        var rollups = new DailyRollups();
        foreach (var run in connection.Query<CountedRun>(
            """
            SELECT timestamp_ms AS TimestampMs, branch AS Branch, status = 'passed' AS Passed, duration_ms AS DurationMs
            FROM test_runs WHERE project_id = @projectKey AND timestamp_ms >= @dayStart AND timestamp_ms < @dayEnd AND head_key IS NULL;
            """,
            new { projectKey, dayStart, dayEnd }, transaction))
        {
            rollups.Add(projectKey, run.TimestampMs, run.Branch, run.Passed, run.DurationMs);
        }

        SqliteRollupFolder.MergeInto(connection, transaction, rollups);
        transaction.Commit();
    }

    /// <summary>
    /// What only purged runs used goes with them: failure messages no execution names any more (their text is
    /// tenant data, and retention must bound the disk), groups without messages, and tests without roll-ups. Tests
    /// are only removed once every run is folded (else a test whose only runs are unfolded has no roll-ups yet).
    /// The writer caches these ids, so its caches are told to start over.
    /// </summary>
    private void RemoveOrphans(Microsoft.Data.Sqlite.SqliteConnection connection, Microsoft.Data.Sqlite.SqliteTransaction transaction, long projectKey)
    {
        connection.Execute(
            """
            DELETE FROM failure_messages WHERE project_id = @projectKey
              AND NOT EXISTS (SELECT 1 FROM executions INDEXED BY executions_by_message WHERE message_id = failure_messages.id);
            """,
            new { projectKey }, transaction);
        connection.Execute(
            """
            DELETE FROM failure_groups WHERE project_id = @projectKey
              AND NOT EXISTS (SELECT 1 FROM failure_messages INDEXED BY failure_messages_by_group WHERE group_id = failure_groups.id);
            """,
            new { projectKey }, transaction);
        connection.Execute(
            "DELETE FROM failure_days WHERE project_id = @projectKey AND group_id NOT IN (SELECT id FROM failure_groups WHERE project_id = @projectKey);",
            new { projectKey }, transaction);
        var folded = connection.ExecuteScalar<long>(
            "SELECT (SELECT last_run_id FROM test_rollup_state) >= (SELECT coalesce(max(id), 0) FROM test_runs);", null, transaction) != 0;
        if (folded)
        {
            connection.Execute(
                """
                DELETE FROM tests WHERE project_id = @projectKey
                  AND NOT EXISTS (SELECT 1 FROM test_days INDEXED BY test_days_by_test WHERE test_id = tests.id);
                """,
                new { projectKey }, transaction);
        }

        _database.ForgetCachedIds();
    }

    public Task<IReadOnlyList<string>> RevokeProjectTokensAsync(long projectKey, long nowMs) =>
        _writes.RunAsync<IReadOnlyList<string>>("revoke_project_tokens", connection =>
        {
            // Copied into a list by hand: Dapper's AsList lives on SqlMapper, whose static constructor pulls
            // Dapper's reflection paths (and their AOT warnings) into the binary.
            return new List<string>(connection.Query<string>(
                "UPDATE api_tokens SET revoked_at = @nowMs WHERE project_id = @projectKey AND revoked_at IS NULL RETURNING id;",
                new { projectKey, nowMs }));
        });

    public Task<IReadOnlyList<string>?> BeginProjectDeletionAsync(long projectKey, long nowMs) =>
        _writes.RunAsync<IReadOnlyList<string>?>("begin_project_deletion", connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            if (connection.Execute("UPDATE projects SET deleted_at = @nowMs WHERE id = @projectKey AND deleted_at IS NULL;",
                new { projectKey, nowMs }, transaction) == 0)
            {
                return null;
            }

            var revoked = new List<string>(connection.Query<string>(
                "UPDATE api_tokens SET revoked_at = @nowMs WHERE project_id = @projectKey AND revoked_at IS NULL RETURNING id;",
                new { projectKey, nowMs }, transaction));
            transaction.Commit();
            return revoked;
        });

    public Task<(IReadOnlyList<long> ProjectKeys, IReadOnlyList<string> TokenIds)?> BeginOrgDeletionAsync(long orgKey, long nowMs) =>
        _writes.RunAsync<(IReadOnlyList<long> ProjectKeys, IReadOnlyList<string> TokenIds)?>("begin_org_deletion", connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            if (connection.Execute("UPDATE orgs SET deleted_at = @nowMs WHERE id = @orgKey AND deleted_at IS NULL;",
                new { orgKey, nowMs }, transaction) == 0)
            {
                return null;
            }

            connection.Execute("UPDATE projects SET deleted_at = @nowMs WHERE org_id = @orgKey AND deleted_at IS NULL;", new { orgKey, nowMs }, transaction);
            var projects = new List<long>(connection.Query<long>("SELECT id FROM projects WHERE org_id = @orgKey;", new { orgKey }, transaction));
            var revoked = new List<string>(connection.Query<string>(
                """
                UPDATE api_tokens SET revoked_at = @nowMs
                WHERE (org_id = @orgKey OR project_id IN (SELECT id FROM projects WHERE org_id = @orgKey)) AND revoked_at IS NULL
                RETURNING id;
                """,
                new { orgKey, nowMs }, transaction));
            transaction.Commit();
            return (projects, revoked);
        });

    /// <summary>
    /// Per-test data of a project can run to millions of rows (tests x days x branches): it goes in paced batches,
    /// each its own short write queued behind ingest, so ingest never waits long behind a deletion.
    /// </summary>
    private static readonly string[] s_projectDataBatches =
    [
        "DELETE FROM test_days WHERE (project_id, branch, day, test_id) IN (SELECT project_id, branch, day, test_id FROM test_days WHERE project_id = @projectKey LIMIT 20000);",
        "DELETE FROM failure_days WHERE (project_id, day, group_id, test_id) IN (SELECT project_id, day, group_id, test_id FROM failure_days WHERE project_id = @projectKey LIMIT 20000);",
        "DELETE FROM commit_failures WHERE (project_id, commit_sha, test_id) IN (SELECT project_id, commit_sha, test_id FROM commit_failures WHERE project_id = @projectKey LIMIT 20000);",
        "DELETE FROM failure_messages WHERE id IN (SELECT id FROM failure_messages WHERE project_id = @projectKey LIMIT 20000);",
        "DELETE FROM tests WHERE id IN (SELECT id FROM tests WHERE project_id = @projectKey LIMIT 20000);",
    ];

    public async Task DeleteProjectAsync(long projectKey, CancellationToken cancellation = default)
    {
        foreach (var sql in s_projectDataBatches)
        {
            while (await _writes.RunAsync("delete_project_data", connection => connection.Execute(sql, new { projectKey })) > 0)
            {
                cancellation.ThrowIfCancellationRequested(); // the deletion is final; the retention job finishes it
            }
        }

        await _writes.RunAsync("delete_project", connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            connection.Execute("DELETE FROM run_daily_stats WHERE project_id = @projectKey;", new { projectKey }, transaction);
            connection.Execute("DELETE FROM test_days WHERE project_id = @projectKey;", new { projectKey }, transaction);
            connection.Execute("DELETE FROM failure_days WHERE project_id = @projectKey;", new { projectKey }, transaction);
            connection.Execute("DELETE FROM commit_failures WHERE project_id = @projectKey;", new { projectKey }, transaction);
            connection.Execute("DELETE FROM failure_messages WHERE project_id = @projectKey;", new { projectKey }, transaction);
            connection.Execute("DELETE FROM failure_groups WHERE project_id = @projectKey;", new { projectKey }, transaction);
            connection.Execute("DELETE FROM tests WHERE project_id = @projectKey;", new { projectKey }, transaction);
            connection.Execute("DELETE FROM api_tokens WHERE project_id = @projectKey;", new { projectKey }, transaction);
            connection.Execute("DELETE FROM projects WHERE id = @projectKey;", new { projectKey }, transaction);
            transaction.Commit();
        });
    }

    public ValueTask<(IReadOnlyList<long> ProjectKeys, IReadOnlyList<long> OrgKeys)> UnfinishedDeletionsAsync(long beganBeforeMs)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return new((new List<long>(connection.Query<long>("SELECT id FROM projects WHERE deleted_at < @beganBeforeMs;", new { beganBeforeMs })),
            new List<long>(connection.Query<long>("SELECT id FROM orgs WHERE deleted_at < @beganBeforeMs;", new { beganBeforeMs }))));
    }

    public ValueTask<IReadOnlyList<long>> ProjectKeysOfAsync(long orgKey)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return new(new List<long>(connection.Query<long>("SELECT id FROM projects WHERE org_id = @orgKey;", new { orgKey })));
    }

    public Task<IReadOnlyList<string>> DeleteOrgAsync(long orgKey) =>
        _writes.RunAsync<IReadOnlyList<string>>("delete_org", connection =>
        {
            using var transaction = connection.BeginTransaction();
            var tokens = new List<string>(connection.Query<string>("DELETE FROM api_tokens WHERE org_id = @orgKey RETURNING id;", new { orgKey }, transaction));
            connection.Execute("DELETE FROM orgs WHERE id = @orgKey;", new { orgKey }, transaction);
            transaction.Commit();
            return tokens;
        });

    public string? BackupUnavailableReason => null;

    public Task<long> BackupAsync(string path, CancellationToken cancellationToken) =>
        // A job's thread, not the writer's: the copy reads one snapshot for as long as it takes while ingest goes on.
        Task.Run(() =>
        {
            PrivateFiles.EnsureDirectory(Path.GetDirectoryName(path)!);
            // VACUUM INTO writes into an empty file as well as a new one: the file is created private first, so the
            // copy of every tenant's data is never readable by other local users, not even for a moment.
            // Not a read connection: query_only refuses VACUUM INTO, although it writes only the new file. It reads
            // one consistent snapshot (a WAL read transaction) of this database and never writes to it. The copy is
            // written as .partial and renamed once complete, so a file with the backup's name is always whole; a
            // shutdown interrupts the copy (and leaves only the .partial, removed here).
            var partial = path + ".partial";
            PrivateFiles.EnsureFile(partial);
            using var connection = _database.OpenWriter();
            using var interrupt = cancellationToken.Register(static handle => SQLitePCL.raw.sqlite3_interrupt((SQLitePCL.sqlite3)handle!), connection.Handle);
            try
            {
                connection.Execute("VACUUM INTO @partial;", new { partial });
            }
            catch
            {
                File.Delete(partial);
                throw;
            }

            File.Move(partial, path, overwrite: true);
            return new FileInfo(path).Length;
        }, cancellationToken);
}
