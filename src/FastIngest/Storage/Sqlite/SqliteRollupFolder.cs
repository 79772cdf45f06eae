using System.Text;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// Keeps <c>run_daily_stats</c> current without touching the ingest transaction: every run with an id above
/// the watermark in <c>rollup_state</c> is folded into its (project, day, branch) groups, and the watermark
/// moves, in one IMMEDIATE transaction on the writer. Runs on a timer in the background and before every statistics
/// read (which asks the writer to fold and awaits it; the read itself writes nothing), so stats are exact at read
/// time while the ingest hot path stays a single insert per run.
/// Invariant: every run with id &lt;= watermark is counted in the roll-ups exactly once.
/// </summary>
public sealed class SqliteRollupFolder
{
    private const int Chunk = 20_000;
    private readonly SqliteDatabase _database;
    private readonly SqliteWrites _writes;
    private readonly TestAnalytics.TestStateRules _rules;

    public SqliteRollupFolder(SqliteDatabase database, SqliteWrites writes, TestAnalytics.TestStateRules rules)
    {
        _database = database;
        _writes = writes;
        _rules = rules;
    }

    /// <summary>Folds everything committed so far into the run roll-ups (cheap: one small row per run).</summary>
    public Task<FoldProgress> FoldRunsAsync() => FoldWhilePendingAsync("fold_runs", FoldWatermark.Runs, static (c, t, _) =>
    {
        var runs = FoldChunk(c, t);
        return new FoldProgress(runs, Full: runs >= Chunk);
    }, int.MaxValue);

    /// <summary>
    /// Folds at most <paramref name="maxChunks"/> chunks of runs into the per-test roll-ups (each chunk its own
    /// short write). A backlog (the runs of an upgraded database) is folded a little at a
    /// time by the background loop, never in one go for a read.
    /// </summary>
    public Task<FoldProgress> FoldTestsAsync(int maxChunks) => FoldWhilePendingAsync("fold_tests", FoldWatermark.Tests, TestRollupFolder.FoldChunk, maxChunks);

    /// <summary>Whether runs are waiting for the per-test fold.</summary>
    public bool TestsPending()
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return HasPending(connection, FoldWatermark.Tests);
    }

    /// <summary>
    /// Folds chunk after chunk, each a write of its own queued to the writer (so ingest goes between them), until
    /// nothing is pending or the chunks run out. Roll-ups are derived data and the watermark commits with them: a
    /// fold lost to a power cut is simply folded again, so these writes need no flush of their own (and answer
    /// without one). The look for pending runs is a read, so an idle server queues no write at all. A chunk that was
    /// not full found everything pending when it ran: under steady ingest the next would only chase the batch
    /// committed meanwhile, a write of its own for a handful of runs, so folding stops there.
    /// </summary>
    private async Task<FoldProgress> FoldWhilePendingAsync(string name, string state,
        Func<SqliteConnection, SqliteTransaction, TestAnalytics.TestStateRules, FoldProgress> foldChunk, int maxChunks)
    {
        if (!Pending(state))
        {
            return default;
        }

        long total = 0;
        var full = false;
        for (var chunk = 0; chunk < maxChunks; chunk++)
        {
            var folded = await _writes.RunAsync(name, connection =>
            {
                using var transaction = connection.BeginTransaction(deferred: false);
                var count = foldChunk(connection, transaction, _rules);
                transaction.Commit();
                return count;
            }, durable: false);
            total += folded.Moved;
            full = folded.Full;
            if (!full)
            {
                break;
            }
        }

        return new FoldProgress(total, full);
    }

    private bool Pending(string state)
    {
        using var lease = _database.Read();
        var connection = lease.Connection;
        return HasPending(connection, state);
    }

    /// <summary>A read-only look, so an idle server's folds take no write lock at all.</summary>
    private static bool HasPending(SqliteConnection connection, string state)
    {
        return connection.ScalarInt64($"SELECT EXISTS (SELECT 1 FROM test_runs WHERE id > (SELECT last_run_id FROM {state} WHERE id = 1));") != 0;
    }

    /// <summary>Folds up to one chunk of unfolded runs inside the caller's transaction.</summary>
    internal static int FoldChunk(SqliteConnection connection, SqliteTransaction transaction)
    {
        var watermark = FoldWatermark.Read(connection, FoldWatermark.Runs);
        var rollups = new DailyRollups();
        long last = watermark;
        var count = 0;
        // Read through SQLite's C API: an ADO.NET reader cost about 0.6 µs per run on the writer (a type check and a
        // call per column, a string per branch), which at fleet load is a few per cent of the core (load/profile.sh).
        using (var rented = connection.RentRaw("""
            SELECT id, project_id, timestamp_ms, branch, status = 'passed', duration_ms, shards IS NOT NULL,
                   prior_status = 'passed', prior_duration_ms
            FROM test_runs WHERE id > ?1 ORDER BY id LIMIT ?2;
            """))
        {
            var read = rented.Statement;
            raw.sqlite3_bind_int64(read, 1, watermark);
            raw.sqlite3_bind_int(read, 2, Chunk);
            // Giving the statement back (the using) resets it and clears its bindings, also after a throw.
            var branches = new BranchNames();
            int rc;
            while ((rc = raw.sqlite3_step(read)) == raw.SQLITE_ROW)
            {
                last = raw.sqlite3_column_int64(read, 0);
                count++;
                if (raw.sqlite3_column_int(read, 6) != 0)
                {
                    continue; // a sharded run's head: the run is counted from its shards, as they arrive
                }

                var (project, timestampMs) = (raw.sqlite3_column_int64(read, 1), raw.sqlite3_column_int64(read, 2));
                var branch = raw.sqlite3_column_type(read, 3) == raw.SQLITE_NULL ? null : branches.Of(raw.sqlite3_column_blob(read, 3));
                var (passed, durationMs) = (raw.sqlite3_column_int(read, 4) != 0, raw.sqlite3_column_int64(read, 5));
                if (raw.sqlite3_column_type(read, 7) != raw.SQLITE_NULL)
                {
                    // A later shard: the run as its earlier shards made it (all folded by now: keys grow; the writer
                    // kept that state on this row) is taken out and counted again with this shard merged in, so a
                    // run is one run however many shards it has, at O(1) per shard.
                    var (priorPassed, priorDuration) = (raw.sqlite3_column_int(read, 7) != 0, raw.sqlite3_column_int64(read, 8));
                    rollups.Remove(project, timestampMs, branch, priorPassed, priorDuration);
                    (passed, durationMs) = (passed && priorPassed, Math.Max(durationMs, priorDuration));
                }

                rollups.Add(project, timestampMs, branch, passed, durationMs);
            }

            if (rc != raw.SQLITE_DONE)
            {
                RawSqlite.Check(connection.Handle!, rc);
            }
        }

        if (count == 0)
        {
            return 0;
        }

        MergeInto(connection, transaction, rollups);
        FoldWatermark.Move(connection, FoldWatermark.Runs, last);
        return count;
    }

    /// <summary>Adds the groups to the stored roll-ups (read, merge, write each group once).</summary>
    internal static void MergeInto(SqliteConnection connection, SqliteTransaction transaction, DailyRollups rollups)
    {
        using var read = connection.Rent("SELECT total, passed, failed, duration_max, histogram FROM run_daily_stats WHERE project_id = $p AND day = $d AND branch = $b;");
        var rp = read.Parameters.Add("$p", SqliteType.Integer);
        var rd = read.Parameters.Add("$d", SqliteType.Integer);
        var rb = read.Parameters.Add("$b", SqliteType.Text);

        using var write = connection.Rent("""
            INSERT OR REPLACE INTO run_daily_stats (project_id, day, branch, total, passed, failed, duration_max, histogram)
            VALUES ($p, $d, $b, $t, $ps, $f, $m, $h);
            """);
        var wp = write.Parameters.Add("$p", SqliteType.Integer);
        var wd = write.Parameters.Add("$d", SqliteType.Integer);
        var wb = write.Parameters.Add("$b", SqliteType.Text);
        var wt = write.Parameters.Add("$t", SqliteType.Integer);
        var wps = write.Parameters.Add("$ps", SqliteType.Integer);
        var wf = write.Parameters.Add("$f", SqliteType.Integer);
        var wm = write.Parameters.Add("$m", SqliteType.Integer);
        var wh = write.Parameters.Add("$h", SqliteType.Blob);

        foreach (var ((project, day, branch), group) in rollups.Groups)
        {
            rp.Value = project;
            rd.Value = day;
            rb.Value = branch;
            using (var reader = read.ExecuteReader())
            {
                if (reader.Read())
                {
                    group.Total += reader.GetInt64(0);
                    group.Passed += reader.GetInt64(1);
                    group.Failed += reader.GetInt64(2);
                    group.DurationMax = Math.Max(group.DurationMax, reader.GetInt64(3));
                    DurationHistogram.Merge(group.Histogram, (byte[])reader.GetValue(4));
                }
                else
                {
                    // A shard's retraction can only meet a missing row when a purge dropped the day while runs of it
                    // stayed (an old timestamp arriving mid-purge): count what is added, never a negative.
                    group.ClampAtZero();
                }
            }

            wp.Value = project;
            wd.Value = day;
            wb.Value = branch;
            wt.Value = group.Total;
            wps.Value = group.Passed;
            wf.Value = group.Failed;
            wm.Value = group.DurationMax;
            wh.Value = group.Histogram;
            write.ExecuteNonQuery();
        }
    }

    /// <summary>
    /// One string per branch name in a chunk: a chunk's runs name a handful of branches, so each row's name is
    /// decoded onto the stack and looked up, and the string made for an earlier row is used instead of a new one.
    /// The bytes are UTF-8 because the server creates its databases in SQLite's default encoding, UTF-8.
    /// </summary>
    private sealed class BranchNames
    {
        private readonly HashSet<string> _names;
        private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _byChars;

        public BranchNames()
        {
            _names = new HashSet<string>(StringComparer.Ordinal);
            _byChars = _names.GetAlternateLookup<ReadOnlySpan<char>>();
        }

        public string Of(ReadOnlySpan<byte> utf8)
        {
            var chars = utf8.Length <= 1024 ? stackalloc char[utf8.Length] : new char[utf8.Length];
            var name = chars[..Encoding.UTF8.GetChars(utf8, chars)];
            if (_byChars.TryGetValue(name, out var known))
            {
                return known;
            }

            var made = name.ToString();
            _names.Add(made);
            return made;
        }
    }
}

/// <summary>
/// What a fold did: how far its watermark moved (in runs or run ids) and whether its last chunk was full, the only
/// case in which more may be pending than it saw.
/// </summary>
public readonly record struct FoldProgress(long Moved, bool Full);

/// <summary>
/// Where each fold keeps the last run it counted: one row (id 1) of its state table, read and moved inside the
/// fold's transaction, so the roll-ups and the watermark commit together.
/// </summary>
internal static class FoldWatermark
{
    /// <summary>The run roll-ups' state table.</summary>
    public const string Runs = "rollup_state";

    /// <summary>The per-test roll-ups' state table.</summary>
    public const string Tests = "test_rollup_state";

    public static long Read(SqliteConnection connection, string state) => connection.ScalarInt64($"SELECT last_run_id FROM {state} WHERE id = 1;");

    public static void Move(SqliteConnection connection, string state, long last)
    {
        using var move = connection.Rent($"UPDATE {state} SET last_run_id = $last WHERE id = 1;");
        move.Parameters.AddWithValue("$last", last);
        move.ExecuteNonQuery();
    }
}
