using System.Runtime.InteropServices;
using FastIngest.TestAnalytics;
using Npgsql;
using NpgsqlTypes;

namespace FastIngest.Storage.Postgres;

/// <summary>
/// Ingest batches into PostgreSQL: one transaction per batch (group commit: the batch writer still gathers what is
/// queued), insert-if-absent per (project, run id, shard) with <c>ON CONFLICT DO NOTHING</c>, then the stored
/// fingerprint decides between a retry and a conflict, exactly as on SQLite. Any number of nodes may write at once:
/// <list type="bullet">
/// <item>An insert that meets another node's uncommitted row with the same key waits for it, then sees it: of two
/// identical uploads racing on two nodes one is created and the other is a duplicate.</item>
/// <item>A shard locks its run's head row (<c>FOR UPDATE</c>) before joining it, so merges on several nodes happen
/// one after another.</item>
/// <item>A batch holds its projects' shared locks (<see cref="ProjectLocks"/>), taken up front in key order: a deletion
/// that begins meanwhile waits for the batch, as it waits for SQLite's one writer, and later batches see it.</item>
/// <item>Rows shared between runs (the batch's tests, failure groups and messages) are inserted first, for the whole
/// batch in key order; then the batch's whole runs in (project, run id) order in one statement, then its shards and
/// lookups in (project, run id, shard) order. Two nodes mostly take locks in the same order; a deadlock or
/// serialization failure all the same makes the batch run again after a short, random pause.</item>
/// <item>Every stored run row that can carry executions (a whole run or a shard, never a sharded run's head) is queued in
/// <c>runs_to_fold</c> in the same statement, for the per-test fold (<see cref="PostgresTestRollups"/>).</item>
/// </list>
/// The daily run roll-ups change in the same transaction (one upsert per project, day and branch the batch
/// touched, in key order), so statistics are exact at every commit and reads never fold.
/// A commit returns once PostgreSQL made it durable (<c>synchronous_commit</c> on, its default), so
/// <see cref="MakeDurableAsync"/> has nothing left to do.
/// </summary>
public sealed class PostgresRunBatchStore : IRunBatchStore
{
    private const int MaxAttempts = 4;
    private static readonly byte[] s_headFingerprint = [0];
    private readonly NpgsqlDataSource _db;

    public PostgresRunBatchStore(PostgresDatabase database) => _db = database.DataSource;

    public async ValueTask CommitAsync(ReadOnlyMemory<RunRecord> runs, Memory<RunWriteOutcome> outcomes)
    {
        var isolateRuns = false;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await WriteBatchAsync(runs, outcomes, isolateRuns);
                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation && attempt < MaxAttempts)
            {
                // A purge on another node removed a failure message this batch had just looked up: look again.
            }
            catch (PostgresException e) when (IsRunLevel(e) && !isolateRuns)
            {
                isolateRuns = true; // written again with a savepoint per run, so only the failing run is left out
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure
                && attempt < MaxAttempts)
            {
                // Another node's batch held what this one needed, in another order: nothing of this one is stored.
                await Task.Delay(Random.Shared.Next(1, 10 * attempt));
            }
        }
    }

    public ValueTask MakeDurableAsync() => ValueTask.CompletedTask;

    public bool FlushesSeparately => false;

    public void Dispose()
    {
    }

    /// <summary>A constraint or a value PostgreSQL refuses is about one run's rows; anything else is about the database.</summary>
    private static bool IsRunLevel(PostgresException e) => e.SqlState.StartsWith("23", StringComparison.Ordinal) || e.SqlState.StartsWith("22", StringComparison.Ordinal);

    private async Task WriteBatchAsync(ReadOnlyMemory<RunRecord> runs, Memory<RunWriteOutcome> outcomes, bool isolateRuns)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted);
        var batch = new Batch(connection, transaction);
        await batch.LockProjectsAsync(runs);
        await batch.InsertSharedRowsAsync(runs);
        var rollups = new DailyRollups();
        var order = WriteOrder(runs.Span);
        // Whole runs (the common case) go in with a few statements for the whole batch; shards, over-quota lookups
        // and a batch written again run by run follow, in the same key order on every node.
        var written = isolateRuns ? null : await batch.WriteWholeRunsAsync(runs, order, outcomes, rollups);
        foreach (var i in order)
        {
            if (written is not null && written[i])
            {
                continue;
            }

            var run = runs.Span[i];
            batch.Counted.Clear();
            RunWriteOutcome outcome;
            if (!batch.IsProjectLive(run.ProjectKey))
            {
                outcome = RunWriteOutcome.ProjectGone;
            }
            else if (run.LookupOnly)
            {
                outcome = await batch.LookupOnlyAsync(run);
            }
            else if (!isolateRuns)
            {
                outcome = await batch.WriteRunAsync(run);
            }
            else
            {
                await transaction.SaveAsync("run");
                try
                {
                    outcome = await batch.WriteRunAsync(run);
                    await transaction.ReleaseAsync("run");
                }
                catch (PostgresException e) when (IsRunLevel(e))
                {
                    await transaction.RollbackAsync("run");
                    batch.Counted.Clear(); // rolled back with its rows
                    outcome = RunWriteOutcome.Failed;
                }
            }

            foreach (var (add, timestampMs, branch, passed, durationMs) in batch.Counted)
            {
                if (add)
                {
                    rollups.Add(run.ProjectKey, timestampMs, branch, passed, durationMs);
                }
                else
                {
                    rollups.Remove(run.ProjectKey, timestampMs, branch, passed, durationMs);
                }
            }

            outcomes.Span[i] = outcome;
        }

        await batch.MergeRollupsAsync(rollups);
        await transaction.CommitAsync();
    }

    /// <summary>The batch's runs by (project, run id, shard): every node locks run keys and shard heads in one order.</summary>
    private static int[] WriteOrder(ReadOnlySpan<RunRecord> runs)
    {
        var order = new int[runs.Length];
        var keys = new (long Project, string RunId, string Shard, int Index)[runs.Length];
        for (var i = 0; i < runs.Length; i++)
        {
            keys[i] = (runs[i].ProjectKey, runs[i].RunId, runs[i].Shard ?? "", i);
        }

        Array.Sort(keys, static (a, b) =>
            a.Project != b.Project ? a.Project.CompareTo(b.Project)
            : string.CompareOrdinal(a.RunId, b.RunId) is var byRun and not 0 ? byRun
            : string.CompareOrdinal(a.Shard, b.Shard) is var byShard and not 0 ? byShard
            : a.Index.CompareTo(b.Index)); // identical keys keep their arrival order: the first one is the one created
        for (var i = 0; i < keys.Length; i++)
        {
            order[i] = keys[i].Index;
        }

        return order;
    }

    /// <summary>One batch's statements on its connection and transaction.</summary>
    private sealed class Batch(NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        private readonly Dictionary<long, bool> _projects = [];

        /// <summary>What the current run changes in the roll-ups: a new run added, a merged run taken out and added again.</summary>
        public List<(bool Add, long TimestampMs, string? Branch, bool Passed, long DurationMs)> Counted { get; } = [];

        /// <summary>The batch's roll-up deltas (see <see cref="PostgresRollups"/>).</summary>
        public Task MergeRollupsAsync(DailyRollups rollups) => PostgresRollups.MergeAsync(connection, transaction, rollups);

        /// <summary>Takes the shared lock of every project of the batch (in key order), then reads which are live.</summary>
        public async Task LockProjectsAsync(ReadOnlyMemory<RunRecord> runs)
        {
            var keys = new SortedSet<long>();
            foreach (var run in runs.Span)
            {
                keys.Add(run.ProjectKey);
            }

            var projects = keys.ToArray();
            foreach (var key in projects) // key order: batches on every node lock their projects alike
            {
                await using var lockOne = Command($"SELECT {ProjectLocks.Shared("$1")};", key);
                await lockOne.ExecuteNonQueryAsync();
            }

            foreach (var key in projects)
            {
                _projects[key] = false;
            }

            await using var live = Command("SELECT id FROM projects WHERE id = ANY($1::bigint[]) AND deleted_at IS NULL;", projects);
            await using var reader = await live.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                _projects[reader.GetInt64(0)] = true;
            }
        }

        public bool IsProjectLive(long projectKey) => _projects.TryGetValue(projectKey, out var live) && live;

        /// <summary>
        /// The tests, failure groups and messages the batch's runs name, inserted if new for the whole batch at once,
        /// each table in key order, before any run: two batches never lock these rows in opposite orders.
        /// </summary>
        public async Task InsertSharedRowsAsync(ReadOnlyMemory<RunRecord> runs)
        {
            var tests = new SortedSet<(long Project, string Suite, string Name)>();
            var files = new Dictionary<(long, string, string), (string? File, long FirstSeenMs)>();
            var messages = new SortedDictionary<(long Project, long Hash), string>();
            foreach (var run in runs.Span)
            {
                if (run.LookupOnly || run.Tests is not { Count: > 0 } cases || !IsProjectLive(run.ProjectKey))
                {
                    continue;
                }

                foreach (var test in cases)
                {
                    var key = (run.ProjectKey, test.Suite, test.Name);
                    if (tests.Add(key))
                    {
                        files[key] = (test.File, run.TimestampMs);
                    }

                    if (test.FailureMessage is { } message)
                    {
                        messages.TryAdd((run.ProjectKey, MessageHash(message)), message);
                    }
                }
            }

            if (tests.Count > 0)
            {
                var ordered = tests.ToArray(); // SortedSet of tuples: project, then suite and name (ordinal)
                await using var insert = Command(
                    """
                    INSERT INTO tests (project_id, suite, name, file, first_seen_ms)
                    SELECT p, s, n, f, t FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[]) WITH ORDINALITY AS u(p, s, n, f, t, o)
                    ORDER BY o
                    ON CONFLICT (project_id, suite, name) DO NOTHING;
                    """,
                    ordered.Select(static k => k.Project).ToArray(), ordered.Select(static k => k.Suite).ToArray(), ordered.Select(static k => k.Name).ToArray(),
                    ordered.Select(k => files[k].File).ToArray(), ordered.Select(k => files[k].FirstSeenMs).ToArray());
                await insert.ExecuteNonQueryAsync();
            }

            if (messages.Count > 0)
            {
                var groups = new SortedDictionary<(long Project, long Fingerprint), string>();
                var rows = new List<(long Project, long Hash, long Group, string Text)>(messages.Count);
                foreach (var ((project, hash), text) in messages)
                {
                    var pattern = FailurePattern.Of(text);
                    var fingerprint = FailurePattern.Fingerprint(pattern);
                    groups.TryAdd((project, fingerprint), pattern);
                    rows.Add((project, hash, fingerprint, text));
                }

                await using (var insertGroups = Command(
                    """
                    INSERT INTO failure_groups (project_id, fingerprint, pattern)
                    SELECT p, f, t FROM unnest($1::bigint[], $2::bigint[], $3::text[]) WITH ORDINALITY AS u(p, f, t, o)
                    ORDER BY o
                    ON CONFLICT (project_id, fingerprint) DO NOTHING;
                    """,
                    groups.Keys.Select(static k => k.Project).ToArray(), groups.Keys.Select(static k => k.Fingerprint).ToArray(), groups.Values.ToArray()))
                {
                    await insertGroups.ExecuteNonQueryAsync();
                }

                await using var insertMessages = Command(
                    """
                    INSERT INTO failure_messages (project_id, hash, group_id, message)
                    SELECT u.p, u.h, g.id, u.m FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[]) WITH ORDINALITY AS u(p, h, f, m, o)
                    JOIN failure_groups AS g ON g.project_id = u.p AND g.fingerprint = u.f
                    ORDER BY u.o
                    ON CONFLICT (project_id, hash) DO NOTHING;
                    """,
                    rows.Select(static r => r.Project).ToArray(), rows.Select(static r => r.Hash).ToArray(), rows.Select(static r => r.Group).ToArray(),
                    rows.Select(static r => r.Text).ToArray());
                await insertMessages.ExecuteNonQueryAsync();
            }
        }

        /// <summary>
        /// The batch's whole runs (no shard, not an over-quota lookup, of a live project) in one multi-row
        /// <c>INSERT ... ON CONFLICT DO NOTHING</c>, in key order; then the created runs' test and message ids in one
        /// read each and all their executions in one insert. A run the insert ignored was stored before (or by an
        /// identical upload earlier in this batch): its stored fingerprint tells a retry from a conflict. Returns
        /// which runs it answered.
        /// </summary>
        public async Task<bool[]> WriteWholeRunsAsync(ReadOnlyMemory<RunRecord> runs, int[] order, Memory<RunWriteOutcome> outcomes, DailyRollups rollups)
        {
            var written = new bool[runs.Length];
            var whole = new List<int>(order.Length);
            foreach (var i in order)
            {
                var run = runs.Span[i];
                if (!run.LookupOnly && run.Shard is null && IsProjectLive(run.ProjectKey))
                {
                    whole.Add(i);
                }
            }

            if (whole.Count == 0)
            {
                return written;
            }

            var n = whole.Count;
            var fingerprints = new byte[n][];
            long[] projects = new long[n], durations = new long[n], timestamps = new long[n], received = new long[n];
            string[] runIds = new string[n], statuses = new string[n];
            string?[] branches = new string?[n], commits = new string?[n], buildUrls = new string?[n];
            long?[] totals = new long?[n], passed = new long?[n], failed = new long?[n], skipped = new long?[n];
            for (var k = 0; k < n; k++)
            {
                var run = runs.Span[whole[k]];
                fingerprints[k] = Fingerprint(run);
                (projects[k], runIds[k], statuses[k], durations[k], timestamps[k]) =
                    (run.ProjectKey, run.RunId, run.Passed ? "passed" : "failed", run.DurationMs, run.TimestampMs);
                (branches[k], commits[k], buildUrls[k], received[k]) = (run.Branch, run.CommitSha, run.BuildUrl, run.ReceivedAtMs);
                (totals[k], passed[k], failed[k], skipped[k]) = (run.Counts?.Total, run.Counts?.Passed, run.Counts?.Failed, run.Counts?.Skipped);
            }

            var keys = new Dictionary<(long Project, string RunId), long>(n);
            await using (var insert = Command(
                """
                WITH stored AS (INSERT INTO test_runs
                    (project_id, run_id, status, duration_ms, timestamp_ms, branch, commit_sha,
                     count_total, count_passed, count_failed, count_skipped, fingerprint, received_at, build_url)
                SELECT p, r, st, d, ts, b, c, ct, cp, cf, cs, f, ra, u FROM unnest(
                    $1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                    $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bytea[], $13::bigint[], $14::text[])
                    WITH ORDINALITY AS x(p, r, st, d, ts, b, c, ct, cp, cf, cs, f, ra, u, o)
                ORDER BY o
                ON CONFLICT (project_id, run_id, shard) DO NOTHING
                RETURNING id, project_id, run_id),
                queued AS (INSERT INTO runs_to_fold (run_key) SELECT id FROM stored)
                SELECT id, project_id, run_id FROM stored;
                """,
                projects, runIds, statuses, durations, timestamps, branches, commits, totals, passed, failed, skipped, fingerprints, received, buildUrls))
            await using (var reader = await insert.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    keys[(reader.GetInt64(1), reader.GetString(2))] = reader.GetInt64(0);
                }
            }

            var created = new List<(RunRecord Run, long Key)>(n);
            for (var k = 0; k < n; k++)
            {
                var i = whole[k];
                var run = runs.Span[i];
                written[i] = true;
                // Identical keys in one batch: the first in key order (its arrival order) is the one the insert stored.
                if (keys.Remove((run.ProjectKey, run.RunId), out var runKey))
                {
                    created.Add((run, runKey));
                    rollups.Add(run.ProjectKey, run.TimestampMs, run.Branch, run.Passed, run.DurationMs);
                    outcomes.Span[i] = RunWriteOutcome.Created;
                }
                else
                {
                    var stored = await StoredOutcomeAsync(run, fingerprints[k])
                        ?? throw new InvalidOperationException("A run the insert ignored has no stored row.");
                    outcomes.Span[i] = stored;
                }
            }

            await WriteExecutionsAsync(created);
            return written;
        }

        public async Task<RunWriteOutcome> WriteRunAsync(RunRecord run)
        {
            var fingerprint = Fingerprint(run);
            if (run.Shard is not null)
            {
                return await WriteShardAsync(run, fingerprint);
            }

            if (await InsertAsync(run, fingerprint, run.TimestampMs, headKey: null, shards: null, prior: null) is { } runKey)
            {
                await WriteExecutionsAsync(run, runKey);
                Counted.Add((true, run.TimestampMs, run.Branch, run.Passed, run.DurationMs));
                return RunWriteOutcome.Created;
            }

            return await StoredOutcomeAsync(run, fingerprint) ?? throw new InvalidOperationException("A run the insert ignored has no stored row.");
        }

        /// <summary>An over-quota upload stores nothing; it still gets the answer a stored run would give it.</summary>
        public async Task<RunWriteOutcome> LookupOnlyAsync(RunRecord run)
        {
            var fingerprint = Fingerprint(run);
            if (run.Shard is not null && await FindHeadAsync(run, forUpdate: false) is { } head && await JoinRefusalAsync(run, head, fingerprint) is { } refused)
            {
                return refused;
            }

            return await StoredOutcomeAsync(run, fingerprint) ?? RunWriteOutcome.OverQuota;
        }

        /// <summary>See <see cref="Sqlite.SqliteRunBatchStore"/>: a head row holds the merged run; each shard is a row of its own.</summary>
        private async Task<RunWriteOutcome> WriteShardAsync(RunRecord run, byte[] fingerprint)
        {
            var head = await FindHeadAsync(run, forUpdate: true);
            if (head is null)
            {
                if (await InsertAsync(run, s_headFingerprint, run.TimestampMs, headKey: null, shards: 1, prior: null) is { } headKey)
                {
                    var shardKey = await InsertAsync(run, fingerprint, run.TimestampMs, headKey, shards: null, prior: null)
                        ?? throw new InvalidOperationException("The first shard of a new run was ignored.");
                    await WriteExecutionsAsync(run, shardKey);
                    Counted.Add((true, run.TimestampMs, run.Branch, run.Passed, run.DurationMs)); // the run, as its first shard made it
                    return RunWriteOutcome.Created;
                }

                // Another node created the run meanwhile (the insert waited for it): join it like any other.
                head = await FindHeadAsync(run, forUpdate: true) ?? throw new InvalidOperationException("A run head the insert ignored is not stored.");
            }

            if (await JoinRefusalAsync(run, head.Value, fingerprint) is { } refused)
            {
                return refused;
            }

            var stored = head.Value;
            if (await InsertAsync(run, fingerprint, stored.TimestampMs, stored.Key, shards: null, prior: (stored.Passed, stored.DurationMs)) is not { } newShardKey)
            {
                return await StoredOutcomeAsync(run, fingerprint) ?? throw new InvalidOperationException("A shard the insert ignored has no stored row.");
            }

            await WriteExecutionsAsync(run, newShardKey);
            await using var merge = Command(
                """
                UPDATE test_runs SET
                    shards = shards + 1,
                    status = CASE WHEN $2 = 'failed' THEN 'failed' ELSE status END,
                    duration_ms = GREATEST(duration_ms, $3),
                    count_total = CASE WHEN $4::bigint IS NULL THEN count_total ELSE coalesce(count_total, 0) + $4 END,
                    count_passed = CASE WHEN $4::bigint IS NULL THEN count_passed ELSE coalesce(count_passed, 0) + $5 END,
                    count_failed = CASE WHEN $4::bigint IS NULL THEN count_failed ELSE coalesce(count_failed, 0) + $6 END,
                    count_skipped = CASE WHEN $4::bigint IS NULL THEN count_skipped ELSE coalesce(count_skipped, 0) + $7 END,
                    received_at = GREATEST(received_at, $8),
                    build_url = coalesce(build_url, $9)
                WHERE id = $1;
                """,
                stored.Key, run.Passed ? "passed" : "failed", run.DurationMs, run.Counts?.Total, run.Counts?.Passed, run.Counts?.Failed,
                run.Counts?.Skipped, run.ReceivedAtMs, run.BuildUrl);
            await merge.ExecuteNonQueryAsync();
            // The run counted once: as it was before this shard, out; as it is now, in (the head is locked, so exact).
            Counted.Add((false, stored.TimestampMs, stored.Branch, stored.Passed, stored.DurationMs));
            Counted.Add((true, stored.TimestampMs, stored.Branch, stored.Passed && run.Passed, Math.Max(stored.DurationMs, run.DurationMs)));
            return RunWriteOutcome.Created;
        }

        private async Task<RunWriteOutcome?> JoinRefusalAsync(RunRecord run, Head head, byte[] fingerprint)
        {
            if (head.Shards is not { } shards)
            {
                return RunWriteOutcome.ShardMismatch;
            }

            if (head.Branch != run.Branch || head.CommitSha != run.CommitSha)
            {
                return await StoredOutcomeAsync(run, fingerprint) ?? RunWriteOutcome.ShardMismatch;
            }

            return shards >= Ingest.IngestFields.MaxShardsPerRun ? await StoredOutcomeAsync(run, fingerprint) ?? RunWriteOutcome.TooManyShards : null;
        }

        /// <summary>Inserts a run row if its key is free; a row with executions (not a sharded run's head) is queued for the per-test fold.</summary>
        private async Task<long?> InsertAsync(RunRecord run, byte[] fingerprint, long timestampMs, long? headKey, long? shards, (bool Passed, long DurationMs)? prior)
        {
            await using var insert = Command(
                """
                WITH stored AS (INSERT INTO test_runs
                    (project_id, run_id, status, duration_ms, timestamp_ms, branch, commit_sha,
                     count_total, count_passed, count_failed, count_skipped, fingerprint, received_at, build_url,
                     shard, head_key, shards, prior_status, prior_duration_ms)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
                ON CONFLICT (project_id, run_id, shard) DO NOTHING
                RETURNING id, shards),
                queued AS (INSERT INTO runs_to_fold (run_key) SELECT id FROM stored WHERE shards IS NULL)
                SELECT id FROM stored;
                """,
                run.ProjectKey, run.RunId, run.Passed ? "passed" : "failed", run.DurationMs, timestampMs, run.Branch, run.CommitSha,
                run.Counts?.Total, run.Counts?.Passed, run.Counts?.Failed, run.Counts?.Skipped, fingerprint, run.ReceivedAtMs, run.BuildUrl,
                shards is null ? run.Shard ?? "" : "", headKey, shards, prior is { } p ? (p.Passed ? "passed" : "failed") : null, prior?.DurationMs);
            return await insert.ExecuteScalarAsync() is long key ? key : null;
        }

        /// <summary>What a stored upload with this key makes of this one (retry, conflict, mismatch); null when none has it.</summary>
        private async Task<RunWriteOutcome?> StoredOutcomeAsync(RunRecord run, byte[] fingerprint)
        {
            await using var query = Command("SELECT fingerprint, shards FROM test_runs WHERE project_id = $1 AND run_id = $2 AND shard = $3;",
                run.ProjectKey, run.RunId, run.Shard ?? "");
            await using var reader = await query.ExecuteReaderAsync();
            if (!await reader.ReadAsync())
            {
                return null;
            }

            if (!reader.IsDBNull(1))
            {
                return RunWriteOutcome.ShardMismatch; // a sharded run's head
            }

            return ((byte[])reader.GetValue(0)).AsSpan().SequenceEqual(fingerprint) ? RunWriteOutcome.Duplicate : RunWriteOutcome.Conflict;
        }

        private async Task<Head?> FindHeadAsync(RunRecord run, bool forUpdate)
        {
            await using var query = Command(
                "SELECT id, shards, timestamp_ms, branch, commit_sha, status, duration_ms FROM test_runs WHERE project_id = $1 AND run_id = $2 AND shard = ''"
                + (forUpdate ? " FOR UPDATE;" : ";"),
                run.ProjectKey, run.RunId);
            await using var reader = await query.ExecuteReaderAsync();
            if (!await reader.ReadAsync())
            {
                return null;
            }

            return new Head(reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetInt32(1), reader.GetInt64(2),
                reader.IsDBNull(3) ? null : reader.GetString(3), reader.IsDBNull(4) ? null : reader.GetString(4), reader.GetString(5) == "passed",
                reader.GetInt64(6));
        }

        /// <summary>
        /// The run's test cases: the ids of the tests and messages it names (inserted for the whole batch already, and
        /// kept from removal by the project's shared lock) are read back, then the executions go in as one statement.
        /// </summary>
        private async Task WriteExecutionsAsync(RunRecord run, long rowKey)
        {
            if (run.Tests is not { Count: > 0 } cases)
            {
                return;
            }

            var testIds = await TestIdsAsync(run.ProjectKey, cases);
            var messageIds = await MessageIdsAsync(run.ProjectKey, cases);
            var count = cases.Count;
            var tests = new long[count];
            var attempts = new int[count];
            var statuses = new short[count];
            var durations = new long[count];
            var messages = new long[count];
            for (var i = 0; i < count; i++)
            {
                var test = cases[i];
                tests[i] = testIds[(test.Suite, test.Name)];
                attempts[i] = test.Attempt;
                statuses[i] = (short)test.Status;
                durations[i] = test.DurationMs;
                messages[i] = test.FailureMessage is { } message ? messageIds[MessageHash(message)] : 0;
            }

            await using var insert = Command(
                """
                INSERT INTO executions (run_key, test_id, attempt, status, duration_ms, message_id)
                SELECT $1, t, a, s, d, NULLIF(m, 0) FROM unnest($2::bigint[], $3::integer[], $4::smallint[], $5::bigint[], $6::bigint[]) AS u(t, a, s, d, m)
                ORDER BY t, a;
                """,
                rowKey, tests, attempts, statuses, durations, messages);
            await insert.ExecuteNonQueryAsync();
        }

        /// <summary>The executions of many new runs in one insert; their test and message ids read once for all of them.</summary>
        private async Task WriteExecutionsAsync(List<(RunRecord Run, long Key)> created)
        {
            var count = 0;
            var testKeys = new HashSet<(long Project, string Suite, string Name)>();
            var messageKeys = new HashSet<(long Project, long Hash)>();
            foreach (var (run, _) in created)
            {
                foreach (var test in run.Tests ?? [])
                {
                    count++;
                    testKeys.Add((run.ProjectKey, test.Suite, test.Name));
                    if (test.FailureMessage is { } message)
                    {
                        messageKeys.Add((run.ProjectKey, MessageHash(message)));
                    }
                }
            }

            if (count == 0)
            {
                return;
            }

            var testIds = new Dictionary<(long Project, string Suite, string Name), long>(testKeys.Count);
            await using (var read = Command(
                """
                SELECT t.id, t.project_id, t.suite, t.name FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(p, s, n)
                JOIN tests AS t ON t.project_id = u.p AND t.suite = u.s AND t.name = u.n;
                """,
                testKeys.Select(static k => k.Project).ToArray(), testKeys.Select(static k => k.Suite).ToArray(), testKeys.Select(static k => k.Name).ToArray()))
            await using (var reader = await read.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    testIds[(reader.GetInt64(1), reader.GetString(2), reader.GetString(3))] = reader.GetInt64(0);
                }
            }

            var messageIds = new Dictionary<(long Project, long Hash), long>(messageKeys.Count);
            if (messageKeys.Count > 0)
            {
                await using var read = Command(
                    "SELECT m.id, m.project_id, m.hash FROM unnest($1::bigint[], $2::bigint[]) AS u(p, h) JOIN failure_messages AS m ON m.project_id = u.p AND m.hash = u.h;",
                    messageKeys.Select(static k => k.Project).ToArray(), messageKeys.Select(static k => k.Hash).ToArray());
                await using var reader = await read.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                    messageIds[(reader.GetInt64(1), reader.GetInt64(2))] = reader.GetInt64(0);
                }
            }

            var runKeys = new long[count];
            var tests = new long[count];
            var attempts = new int[count];
            var statuses = new short[count];
            var durations = new long[count];
            var messages = new long[count];
            var row = 0;
            foreach (var (run, key) in created)
            {
                foreach (var test in run.Tests ?? [])
                {
                    runKeys[row] = key;
                    tests[row] = testIds[(run.ProjectKey, test.Suite, test.Name)];
                    attempts[row] = test.Attempt;
                    statuses[row] = (short)test.Status;
                    durations[row] = test.DurationMs;
                    messages[row] = test.FailureMessage is { } message ? messageIds[(run.ProjectKey, MessageHash(message))] : 0;
                    row++;
                }
            }

            await using var insert = Command(
                """
                INSERT INTO executions (run_key, test_id, attempt, status, duration_ms, message_id)
                SELECT r, t, a, s, d, NULLIF(m, 0) FROM unnest($1::bigint[], $2::bigint[], $3::integer[], $4::smallint[], $5::bigint[], $6::bigint[]) AS u(r, t, a, s, d, m)
                ORDER BY r, t, a;
                """,
                runKeys, tests, attempts, statuses, durations, messages);
            await insert.ExecuteNonQueryAsync();
        }

        private async Task<Dictionary<(string Suite, string Name), long>> TestIdsAsync(long projectKey, IReadOnlyList<TestCase> cases)
        {
            var keys = cases.Select(static t => (t.Suite, t.Name)).Distinct().ToArray();
            var ids = new Dictionary<(string Suite, string Name), long>(keys.Length);
            await using var read = Command(
                "SELECT t.id, t.suite, t.name FROM tests AS t JOIN unnest($2::text[], $3::text[]) AS u(s, n) ON t.suite = u.s AND t.name = u.n WHERE t.project_id = $1;",
                projectKey, keys.Select(static k => k.Suite).ToArray(), keys.Select(static k => k.Name).ToArray());
            await using var reader = await read.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                ids[(reader.GetString(1), reader.GetString(2))] = reader.GetInt64(0);
            }

            return ids;
        }

        private async Task<Dictionary<long, long>> MessageIdsAsync(long projectKey, IReadOnlyList<TestCase> cases)
        {
            var hashes = cases.Where(static t => t.FailureMessage is not null).Select(static t => MessageHash(t.FailureMessage!)).Distinct().ToArray();
            var ids = new Dictionary<long, long>(hashes.Length);
            if (hashes.Length == 0)
            {
                return ids;
            }

            await using var read = Command("SELECT id, hash FROM failure_messages WHERE project_id = $1 AND hash = ANY($2::bigint[]);", projectKey, hashes);
            await using var reader = await read.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                ids[reader.GetInt64(1)] = reader.GetInt64(0);
            }

            return ids;
        }

        /// <summary>The same message hash the SQLite writer stores (XxHash64 over the text's UTF-16 code units).</summary>
        private static long MessageHash(string message) =>
            (long)System.IO.Hashing.XxHash64.HashToUInt64(MemoryMarshal.AsBytes(message.AsSpan()));

        private static byte[] Fingerprint(RunRecord run)
        {
            var bytes = new byte[16];
            RunFingerprints.Write(run.Fingerprint, bytes);
            return bytes;
        }

        private NpgsqlCommand Command(string sql, params object?[] values)
        {
            var command = new NpgsqlCommand(sql, connection, transaction);
            foreach (var value in values)
            {
                command.Parameters.Add(value is null ? new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.Unknown } : new NpgsqlParameter { Value = value });
            }

            return command;
        }
    }

    private readonly record struct Head(long Key, int? Shards, long TimestampMs, string? Branch, string? CommitSha, bool Passed, long DurationMs);
}
