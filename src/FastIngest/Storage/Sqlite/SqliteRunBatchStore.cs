using FastIngest.Configuration;
using Microsoft.Data.Sqlite;
using Microsoft.Win32.SafeHandles;
using SQLitePCL;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// The single writer's view of SQLite: one long-lived connection with one prepared <c>INSERT OR IGNORE</c> and
/// one prepared fingerprint lookup, reused for every batch. It talks to SQLite's C API directly (through
/// SQLitePCL) because this loop is the measured bottleneck: no boxing of parameters, no ADO.NET command
/// machinery per row.
/// <para>
/// Durability: the writer connection commits with <c>synchronous=NORMAL</c> (WAL frames written, not synced)
/// and <see cref="MakeDurable"/> fsyncs the WAL file from the sync thread. A commit's frames are written
/// before that fsync starts, so once it returns they are on disk: the same guarantee as
/// <c>synchronous=FULL</c>, but the flush is apart from the commit: one fsync covers every batch committed before
/// it, and a full batch can be written while the disk flushes (the writer holds smaller ones until the flush
/// ends, see <see cref="Ingest.RunBatchWriter"/>). SQLite still syncs the WAL before each checkpoint and the
/// database after it, so checkpointed data stays durable too.
/// </para>
/// </summary>
public sealed class SqliteRunBatchStore : IRunBatchStore
{
    private readonly SqliteDatabase _database;
    private readonly bool _syncWal;
    private WriterConnection? _writer;
    private SafeFileHandle? _wal;

    public SqliteRunBatchStore(SqliteDatabase database, DurabilityMode durability)
    {
        _database = database;
        _syncWal = durability == DurabilityMode.Full;
    }

    /// <summary>Only with <c>--durability full</c>: then <see cref="MakeDurable"/> is an fsync of the WAL.</summary>
    public bool FlushesSeparately => _syncWal;

    public ValueTask MakeDurableAsync()
    {
        MakeDurable();
        return ValueTask.CompletedTask;
    }

    public ValueTask CommitAsync(ReadOnlyMemory<RunRecord> runs, Memory<RunWriteOutcome> outcomes)
    {
        Commit(runs.Span, outcomes.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary><see cref="MakeDurableAsync"/> for callers on their own thread (seed, tests).</summary>
    public void MakeDurable()
    {
        if (!_syncWal)
        {
            return; // --durability normal: survive a process crash, accept losing the newest commits on power loss
        }

        // The writer connection stays open, so SQLite never deletes or replaces the WAL file while it lives,
        // and the handle is renewed whenever the writer reconnects. fsync covers the file, whichever
        // descriptor asks for it.
        try
        {
            RandomAccess.FlushToDisk(Volatile.Read(ref _wal) ?? throw new InvalidOperationException("The WAL is not open."));
        }
        catch (ObjectDisposedException)
        {
            // The writer reconnected between our read and the fsync; the new handle names the live file.
            RandomAccess.FlushToDisk(Volatile.Read(ref _wal)!);
        }
    }

    /// <summary><see cref="CommitAsync"/> for callers on their own thread (seed, tests).</summary>
    public void Commit(ReadOnlySpan<RunRecord> runs, Span<RunWriteOutcome> outcomes)
    {
        var writer = CurrentWriter();
        try
        {
            writer.Commit(runs, outcomes);
        }
        catch
        {
            // After an I/O error the connection's state is unknown: drop it and start clean on the next batch.
            _writer = null;
            writer.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The writer's connection, for the other writes it runs between batches (<see cref="SqliteWrites"/>). Only the
    /// writer's thread may use it.
    /// </summary>
    internal SqliteConnection Connection => CurrentWriter().Connection;

    private WriterConnection CurrentWriter()
    {
        if (_writer is { } writer && writer.PageCap != _database.MaxPageCount)
        {
            // A test changed the file-size cap (fault injection): start over on a connection that has it.
            _writer = null;
            writer.Dispose();
        }

        return _writer ??= OpenWriter();
    }

    public void Dispose()
    {
        _writer?.Dispose();
        _writer = null;
        _wal?.Dispose();
        _wal = null;
    }

    private WriterConnection OpenWriter()
    {
        // With external sync, commits skip their own fsync; MakeDurable does it, apart from the commits.
        var writer = new WriterConnection(_database.OpenWriter(unsynced: _syncWal), () => _database.CachedIdsEpoch) { PageCap = _database.MaxPageCount };
        if (_syncWal)
        {
            // The open connection has the WAL file in use (SQLite opens it with O_CREAT; so may we, but private).
            try
            {
                PrivateFiles.EnsureFile(_database.Path + "-wal");
                var wal = File.OpenHandle(_database.Path + "-wal", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
                Interlocked.Exchange(ref _wal, wal)?.Dispose();
            }
            catch
            {
                writer.Dispose(); // closed here, not by the finalizer (see WriterConnection's constructor)
                throw;
            }
        }

        return writer;
    }

    private sealed class WriterConnection : IDisposable
    {
        private const string InsertSql = """
            INSERT OR IGNORE INTO test_runs
                (project_id, run_id, status, duration_ms, timestamp_ms, branch, commit_sha,
                 count_total, count_passed, count_failed, count_skipped, fingerprint, received_at, build_url,
                 shard, head_key, shards, prior_status, prior_duration_ms)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19);
            """;

        /// <summary>The stored content of one upload: a run without shards (shard '') or one shard of a run.</summary>
        private const string FingerprintSql = "SELECT fingerprint, shards FROM test_runs WHERE project_id = ?1 AND run_id = ?2 AND shard = ?3;";

        /// <summary>A sharded run's head (or a run without shards, then <c>shards</c> is null).</summary>
        private const string HeadSql = """
            SELECT id, shards, timestamp_ms, branch, commit_sha, status, duration_ms FROM test_runs WHERE project_id = ?1 AND run_id = ?2 AND shard = '';
            """;

        /// <summary>A new shard joins its run: the head holds the merged status, counts and duration.</summary>
        private const string MergeShardSql = """
            UPDATE test_runs SET
                shards = shards + 1,
                status = CASE WHEN ?2 = 'failed' THEN 'failed' ELSE status END,
                duration_ms = max(duration_ms, ?3),
                count_total = CASE WHEN ?4 IS NULL THEN count_total ELSE coalesce(count_total, 0) + ?4 END,
                count_passed = CASE WHEN ?4 IS NULL THEN count_passed ELSE coalesce(count_passed, 0) + ?5 END,
                count_failed = CASE WHEN ?4 IS NULL THEN count_failed ELSE coalesce(count_failed, 0) + ?6 END,
                count_skipped = CASE WHEN ?4 IS NULL THEN count_skipped ELSE coalesce(count_skipped, 0) + ?7 END,
                received_at = max(received_at, ?8),
                build_url = coalesce(build_url, ?9)
            WHERE id = ?1;
            """;

        /// <summary>
        /// Checked inside the batch's write transaction, so no deletion can begin between the check and the
        /// insert. Keys are never reused (AUTOINCREMENT), so a live key is the project the token was issued for.
        /// </summary>
        private const string ProjectLiveSql = "SELECT 1 FROM projects WHERE id = ?1 AND deleted_at IS NULL;";

        private static ReadOnlySpan<byte> Passed => "passed"u8;

        /// <summary>A sharded run's head stores no upload: one byte, which no 16-byte fingerprint equals.</summary>
        private static ReadOnlySpan<byte> HeadFingerprint => [0];

        private static ReadOnlySpan<byte> Failed => "failed"u8;

        private readonly SqliteConnection _connection;
        private readonly sqlite3 _db;
        private readonly sqlite3_stmt _insert;
        private readonly ExecutionWriter _executions;
        private readonly sqlite3_stmt _fingerprint;
        private readonly sqlite3_stmt _head;
        private readonly sqlite3_stmt _mergeShard;
        private readonly sqlite3_stmt _begin;
        private readonly sqlite3_stmt _commit;
        private readonly sqlite3_stmt _rollback;
        private readonly sqlite3_stmt _projectLive;
        private readonly sqlite3_stmt _savepoint;
        private readonly sqlite3_stmt _release;
        private readonly sqlite3_stmt _rollbackToSavepoint;

        /// <summary>Projects looked up in the current batch: a batch usually holds a handful of projects.</summary>
        private readonly List<(long Key, bool Live)> _projects = [];

        public SqliteConnection Connection => _connection;

        /// <summary>The file-size cap (<see cref="SqliteDatabase.MaxPageCount"/>) the connection was opened with.</summary>
        public long? PageCap { get; init; }

        public WriterConnection(SqliteConnection connection, Func<int> epoch)
        {
            _connection = connection;
            _db = connection.Handle!;
            try
            {
                _insert = Prepare(InsertSql);
                _executions = new ExecutionWriter(_db, epoch);
                _fingerprint = Prepare(FingerprintSql);
                _head = Prepare(HeadSql);
                _mergeShard = Prepare(MergeShardSql);
                _begin = Prepare("BEGIN IMMEDIATE;");
                _commit = Prepare("COMMIT;");
                _rollback = Prepare("ROLLBACK;");
                _projectLive = Prepare(ProjectLiveSql);
                _savepoint = Prepare("SAVEPOINT run;");
                _release = Prepare("RELEASE run;");
                _rollbackToSavepoint = Prepare("ROLLBACK TO run;");
            }
            catch
            {
                // Nothing is left to the finalizer: SQLite runs without its per-connection mutex (SqliteDatabase),
                // so a statement finalized on the finalizer's thread could race the next user of this connection.
                Dispose();
                throw;
            }
        }

        /// <summary>
        /// One transaction for the batch. A run whose write breaks a constraint fails alone: the batch is rolled
        /// back and written again with a savepoint around each run, so only that run is left out. (Savepoints
        /// cost two statements per run, so only the retry pays for them.)
        /// </summary>
        public void Commit(ReadOnlySpan<RunRecord> runs, Span<RunWriteOutcome> outcomes)
        {
            try
            {
                WriteBatch(runs, outcomes, isolateRuns: false);
            }
            catch (SqliteException e) when (IsRunLevel(e))
            {
                WriteBatch(runs, outcomes, isolateRuns: true);
            }
        }

        /// <summary>A constraint is about one run's rows; anything else (I/O, full disk, busy) is about the file.</summary>
        private static bool IsRunLevel(SqliteException e) => (e.SqliteErrorCode & 0xFF) == raw.SQLITE_CONSTRAINT;

        private void WriteBatch(ReadOnlySpan<RunRecord> runs, Span<RunWriteOutcome> outcomes, bool isolateRuns)
        {
            _projects.Clear();
            Step(_begin);
            _executions.BeginTransaction();
            try
            {
                Span<byte> fingerprint = stackalloc byte[16];
                for (var i = 0; i < runs.Length; i++)
                {
                    var run = runs[i];
                    if (!IsProjectLive(run.ProjectKey))
                    {
                        outcomes[i] = RunWriteOutcome.ProjectGone;
                        continue;
                    }

                    RunFingerprints.Write(run.Fingerprint, fingerprint);
                    if (run.LookupOnly)
                    {
                        outcomes[i] = LookupOnly(run, fingerprint);
                        continue;
                    }

                    if (!isolateRuns)
                    {
                        outcomes[i] = WriteRun(run, fingerprint);
                        continue;
                    }

                    Step(_savepoint);
                    var mark = _executions.Mark;
                    try
                    {
                        outcomes[i] = WriteRun(run, fingerprint);
                    }
                    catch (SqliteException e) when (IsRunLevel(e))
                    {
                        Step(_rollbackToSavepoint);
                        _executions.RolledBack(mark);
                        outcomes[i] = RunWriteOutcome.Failed;
                    }

                    Step(_release);
                }

                Step(_commit);
            }
            catch
            {
                // The commit may itself have failed (disk full, I/O error): make sure no transaction lingers.
                if (raw.sqlite3_get_autocommit(_db) == 0)
                {
                    raw.sqlite3_step(_rollback);
                    raw.sqlite3_reset(_rollback);
                }

                _executions.RolledBack();

                throw;
            }
        }

        private RunWriteOutcome WriteRun(RunRecord run, ReadOnlySpan<byte> fingerprint)
        {
            if (run.Shard is not null)
            {
                return WriteShard(run, fingerprint);
            }

            if (Insert(run, fingerprint, run.TimestampMs, headKey: null, shards: null, prior: null) is { } runKey)
            {
                WriteExecutions(run, runKey, run.TimestampMs);
                return RunWriteOutcome.Created;
            }

            // Ignored: the key exists, possibly from earlier in this very batch. Same content is a retry.
            return StoredOutcome(run, fingerprint) ?? throw new SqliteException("A run the insert ignored has no stored row.", raw.SQLITE_CORRUPT);
        }

        /// <summary>
        /// One shard of a run. The first creates the run's head row; each shard is its own row (its fingerprint, its
        /// executions) stamped with the head's timestamp, so a run's rows share one day and one place in time
        /// order; a new shard folds its status, counts and duration into the head. Shards of one run meet here in
        /// commit order (one writer), however many connections they arrived on.
        /// </summary>
        private RunWriteOutcome WriteShard(RunRecord run, ReadOnlySpan<byte> fingerprint)
        {
            if (FindHead(run) is not { } head)
            {
                var headKey = Insert(run, HeadFingerprint, run.TimestampMs, headKey: null, shards: 1, prior: null)
                    ?? throw new SqliteException("A run head the lookup did not find was ignored.", raw.SQLITE_CORRUPT);
                var shardKey = Insert(run, fingerprint, run.TimestampMs, headKey, shards: null, prior: null)
                    ?? throw new SqliteException("The first shard of a new run was ignored.", raw.SQLITE_CORRUPT);
                WriteExecutions(run, shardKey, run.TimestampMs);
                return RunWriteOutcome.Created;
            }

            if (JoinRefusal(run, head, fingerprint) is { } refused)
            {
                return refused;
            }

            if (Insert(run, fingerprint, head.TimestampMs, head.Key, shards: null, prior: (head.Passed, head.DurationMs)) is not { } newShardKey)
            {
                return StoredOutcome(run, fingerprint) ?? throw new SqliteException("A shard the insert ignored has no stored row.", raw.SQLITE_CORRUPT);
            }

            WriteExecutions(run, newShardKey, head.TimestampMs);
            MergeIntoHead(head.Key, run);
            return RunWriteOutcome.Created;
        }

        /// <summary>
        /// Why a shard cannot join the stored run with its id (null when it can, or when it is stored already and
        /// its own retry or conflict answer applies): the run was uploaded without shards, the shard names another
        /// branch or commit, or the run has all the shards it may have.
        /// </summary>
        private RunWriteOutcome? JoinRefusal(RunRecord run, Head head, ReadOnlySpan<byte> fingerprint)
        {
            if (head.Shards is not { } shards)
            {
                return RunWriteOutcome.ShardMismatch;
            }

            if (head.Branch != run.Branch || head.CommitSha != run.CommitSha)
            {
                return StoredOutcome(run, fingerprint) ?? RunWriteOutcome.ShardMismatch;
            }

            return shards >= Ingest.IngestFields.MaxShardsPerRun ? StoredOutcome(run, fingerprint) ?? RunWriteOutcome.TooManyShards : null;
        }

        /// <summary>An over-quota upload stores nothing; it still gets the answer a stored run would give it.</summary>
        private RunWriteOutcome LookupOnly(RunRecord run, ReadOnlySpan<byte> fingerprint) =>
            (run.Shard is not null && FindHead(run) is { } head ? JoinRefusal(run, head, fingerprint) : null)
            ?? StoredOutcome(run, fingerprint)
            ?? RunWriteOutcome.OverQuota;

        /// <summary>Inserts one row; its key, or null when the (project, run id, shard) exists.</summary>
        private long? Insert(RunRecord run, ReadOnlySpan<byte> fingerprint, long timestampMs, long? headKey, long? shards,
            (bool Passed, long DurationMs)? prior)
        {
            Bind(run, fingerprint, timestampMs, headKey, shards, prior);
            Step(_insert);
            return raw.sqlite3_changes(_db) == 1 ? raw.sqlite3_last_insert_rowid(_db) : null;
        }

        /// <summary>Only a new row gets its cases: a duplicate's are already stored, a conflict's never are.</summary>
        private void WriteExecutions(RunRecord run, long rowKey, long timestampMs)
        {
            if (run.Tests is { Count: > 0 } tests)
            {
                _executions.Write(rowKey, run.ProjectKey, timestampMs, tests);
            }
        }

        private Head? FindHead(RunRecord run)
        {
            var q = _head;
            raw.sqlite3_bind_int64(q, 1, run.ProjectKey);
            BindText(q, 2, run.RunId);
            try
            {
                var rc = raw.sqlite3_step(q);
                if (rc == raw.SQLITE_DONE)
                {
                    return null;
                }

                if (rc != raw.SQLITE_ROW)
                {
                    Check(rc);
                }

                return new Head(raw.sqlite3_column_int64(q, 0), raw.sqlite3_column_type(q, 1) == raw.SQLITE_NULL ? null : raw.sqlite3_column_int64(q, 1),
                    raw.sqlite3_column_int64(q, 2), ColumnText(q, 3), ColumnText(q, 4), ColumnText(q, 5) == "passed", raw.sqlite3_column_int64(q, 6));
            }
            finally
            {
                raw.sqlite3_reset(q);
            }
        }

        /// <summary>The row with shard '' of a run id: a run without shards (<see cref="Shards"/> null) or a sharded run's head.</summary>
        private readonly record struct Head(long Key, long? Shards, long TimestampMs, string? Branch, string? CommitSha, bool Passed, long DurationMs);

        private static string? ColumnText(sqlite3_stmt statement, int column) =>
            raw.sqlite3_column_type(statement, column) == raw.SQLITE_NULL ? null : raw.sqlite3_column_text(statement, column).utf8_to_string();

        private void MergeIntoHead(long headKey, RunRecord run)
        {
            var s = _mergeShard;
            raw.sqlite3_bind_int64(s, 1, headKey);
            raw.sqlite3_bind_text(s, 2, run.Passed ? Passed : Failed);
            raw.sqlite3_bind_int64(s, 3, run.DurationMs);
            RawSqlite.BindCounts(s, 4, run.Counts);

            raw.sqlite3_bind_int64(s, 8, run.ReceivedAtMs);
            BindText(s, 9, run.BuildUrl);
            Step(s);
        }

        private bool IsProjectLive(long projectKey)
        {
            foreach (var (key, live) in _projects)
            {
                if (key == projectKey)
                {
                    return live;
                }
            }

            var q = _projectLive;
            raw.sqlite3_bind_int64(q, 1, projectKey);
            int rc;
            try
            {
                rc = raw.sqlite3_step(q);
            }
            finally
            {
                raw.sqlite3_reset(q);
            }

            Check(rc);
            var found = rc == raw.SQLITE_ROW;
            _projects.Add((projectKey, found));
            return found;
        }

        public void Dispose()
        {
            // Null-safe: a constructor that failed midway disposes what it prepared.
            _insert?.Dispose();
            _executions?.Dispose();
            _fingerprint?.Dispose();
            _head?.Dispose();
            _mergeShard?.Dispose();
            _begin?.Dispose();
            _commit?.Dispose();
            _rollback?.Dispose();
            _projectLive?.Dispose();
            _savepoint?.Dispose();
            _release?.Dispose();
            _rollbackToSavepoint?.Dispose();
            _connection.Dispose();
        }

        private void Bind(RunRecord run, ReadOnlySpan<byte> fingerprint, long timestampMs, long? headKey, long? shards, (bool Passed, long DurationMs)? prior)
        {
            var s = _insert;
            // Every parameter starts NULL (one call), so only the values a run has are bound: a plain run leaves
            // ten of the nineteen alone, nine calls into SQLite fewer per run on the writer's core.
            raw.sqlite3_clear_bindings(s);
            raw.sqlite3_bind_int64(s, 1, run.ProjectKey);
            BindText(s, 2, run.RunId);
            raw.sqlite3_bind_text(s, 3, run.Passed ? Passed : Failed);
            raw.sqlite3_bind_int64(s, 4, run.DurationMs);
            raw.sqlite3_bind_int64(s, 5, timestampMs);
            if (run.Branch is { } branch)
            {
                BindText(s, 6, branch);
            }

            if (run.CommitSha is { } commitSha)
            {
                BindText(s, 7, commitSha);
            }

            if (run.Counts is { } counts)
            {
                RawSqlite.BindCounts(s, 8, counts);
            }

            raw.sqlite3_bind_blob(s, 12, fingerprint);
            raw.sqlite3_bind_int64(s, 13, run.ReceivedAtMs);
            if (run.BuildUrl is { } buildUrl)
            {
                BindText(s, 14, buildUrl);
            }

            // A head row (shards = 1) is shard ''; so is a run without shards.
            BindText(s, 15, shards is null ? run.Shard ?? "" : "");
            if (headKey is { } head)
            {
                raw.sqlite3_bind_int64(s, 16, head);
            }

            if (shards is { } shardCount)
            {
                raw.sqlite3_bind_int64(s, 17, shardCount);
            }

            if (prior is { } before)
            {
                raw.sqlite3_bind_text(s, 18, before.Passed ? Passed : Failed);
                raw.sqlite3_bind_int64(s, 19, before.DurationMs);
            }
        }

        /// <summary>
        /// What a stored upload with this key makes of this one: a retry (same content), a conflict (other content),
        /// a mismatch (an upload without a shard meeting a sharded run); null when nothing has the key.
        /// </summary>
        private RunWriteOutcome? StoredOutcome(RunRecord run, ReadOnlySpan<byte> fingerprint)
        {
            var q = _fingerprint;
            raw.sqlite3_bind_int64(q, 1, run.ProjectKey);
            BindText(q, 2, run.RunId);
            BindText(q, 3, run.Shard ?? "");
            try
            {
                var rc = raw.sqlite3_step(q);
                if (rc == raw.SQLITE_DONE)
                {
                    return null;
                }

                if (rc != raw.SQLITE_ROW)
                {
                    Check(rc);
                }

                if (raw.sqlite3_column_type(q, 1) != raw.SQLITE_NULL)
                {
                    return RunWriteOutcome.ShardMismatch; // a sharded run's head
                }

                return raw.sqlite3_column_blob(q, 0).SequenceEqual(fingerprint) ? RunWriteOutcome.Duplicate : RunWriteOutcome.Conflict;
            }
            finally
            {
                raw.sqlite3_reset(q);
            }
        }

        private void Step(sqlite3_stmt statement) => RawSqlite.Step(_db, statement);

        private sqlite3_stmt Prepare(string sql) => RawSqlite.Prepare(_db, sql);

        private void Check(int rc) => RawSqlite.Check(_db, rc);

        private static void BindText(sqlite3_stmt statement, int index, string? text) => RawSqlite.BindText(statement, index, text);
    }
}
