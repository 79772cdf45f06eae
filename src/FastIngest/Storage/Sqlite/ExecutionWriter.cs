using System.Buffers;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using FastIngest.TestAnalytics;
using SQLitePCL;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// Stores a run's test cases as executions of first-class tests: each (project, suite, name) gets a compact id the
/// first time it is seen, each distinct failure message is stored once per project (with its failure group), and
/// an execution row is then only small integers: (run, test, attempt) -> status, duration, message. Rows of one
/// run are written in key order at the end of the tree, so pages fill completely.
/// <para>
/// Ids are cached across batches. A cached id whose insert is rolled back would name nothing (or, after a
/// restart, something else), so every id added inside a transaction is journaled and forgotten again if that
/// transaction or its savepoint rolls back.
/// </para>
/// Runs on the writer's connection inside its transaction; not thread-safe (the writer is single-threaded).
/// </summary>
internal sealed class ExecutionWriter : IDisposable
{
    /// <summary>Cached ids kept across batches; past this the caches start over (a few MB at most).</summary>
    private const int MaxCachedIds = 200_000;

    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _findTest, _insertTest, _findMessage, _insertMessage, _findGroup, _insertGroup, _insertExecution;
    /// <summary>Keyed by a 128-bit hash of suite and name, not the strings: an entry costs the same whatever the names' length.</summary>
    private readonly Dictionary<(long Project, UInt128 Name), long> _tests = [];
    private readonly Dictionary<(long Project, long Hash), long> _messages = [];
    private readonly Dictionary<(long Project, long Fingerprint), long> _groups = [];
    private readonly List<(int Kind, object Key)> _journal = [];

    private readonly Func<int> _epoch;
    private int _seenEpoch;

    /// <param name="db">The writer's connection, inside whose transactions every write happens.</param>
    /// <param name="epoch">Moves on when cached ids may name deleted rows (a purge removed orphans): the caches start over.</param>
    public ExecutionWriter(sqlite3 db, Func<int>? epoch = null)
    {
        _db = db;
        _epoch = epoch ?? (static () => 0);
        _seenEpoch = _epoch();
        try
        {
            _findTest = Prepare("SELECT id FROM tests WHERE project_id = ?1 AND suite = ?2 AND name = ?3;");
            _insertTest = Prepare("INSERT INTO tests (project_id, suite, name, file, first_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5);");
            _findMessage = Prepare("SELECT id FROM failure_messages WHERE project_id = ?1 AND hash = ?2;");
            _insertMessage = Prepare("INSERT INTO failure_messages (project_id, hash, group_id, message) VALUES (?1, ?2, ?3, ?4);");
            _findGroup = Prepare("SELECT id FROM failure_groups WHERE project_id = ?1 AND fingerprint = ?2;");
            _insertGroup = Prepare("INSERT INTO failure_groups (project_id, fingerprint, pattern) VALUES (?1, ?2, ?3);");
            _insertExecution = Prepare(
                "INSERT INTO executions (run_key, test_id, attempt, status, duration_ms, message_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6);");
        }
        catch
        {
            Dispose(); // not left to the finalizer's thread (see SqliteRunBatchStore.WriterConnection)
            throw;
        }
    }

    /// <summary>Call as a transaction begins: ids added from here on are journaled.</summary>
    public void BeginTransaction()
    {
        _journal.Clear();
        var epoch = _epoch();
        if (_tests.Count + _messages.Count + _groups.Count > MaxCachedIds || epoch != _seenEpoch)
        {
            _seenEpoch = epoch;
            _tests.Clear();
            _messages.Clear();
            _groups.Clear();
        }
    }

    /// <summary>A point to roll back to (a savepoint's).</summary>
    public int Mark => _journal.Count;

    /// <summary>The transaction (or the savepoint at <paramref name="mark"/>) rolled back: forget what it added.</summary>
    public void RolledBack(int mark = 0)
    {
        for (var i = _journal.Count - 1; i >= mark; i--)
        {
            var (kind, key) = _journal[i];
            _ = kind switch
            {
                0 => _tests.Remove(((long, UInt128))key),
                1 => _messages.Remove(((long, long))key),
                _ => _groups.Remove(((long, long))key),
            };
        }

        _journal.RemoveRange(mark, _journal.Count - mark);
    }

    /// <summary>Writes the run's executions; <paramref name="runKey"/> is its new row.</summary>
    public void Write(long runKey, long projectKey, long timestampMs, IReadOnlyList<TestCase> cases)
    {
        var rows = ArrayPool<Row>.Shared.Rent(cases.Count);
        try
        {
            for (var i = 0; i < cases.Count; i++)
            {
                var test = cases[i];
                rows[i] = new Row(
                    TestId(projectKey, test.Suite, test.Name, test.File, timestampMs),
                    test.Attempt,
                    test.Status,
                    test.DurationMs,
                    test.FailureMessage is { } message ? MessageId(projectKey, message) : 0);
            }

            // Key order: the run's rows go in as one sorted range at the end of the tree.
            var span = rows.AsSpan(0, cases.Count);
            span.Sort(static (a, b) => a.TestId != b.TestId ? a.TestId.CompareTo(b.TestId) : a.Attempt.CompareTo(b.Attempt));
            var s = _insertExecution;
            foreach (ref readonly var row in span)
            {
                raw.sqlite3_bind_int64(s, 1, runKey);
                raw.sqlite3_bind_int64(s, 2, row.TestId);
                raw.sqlite3_bind_int(s, 3, row.Attempt);
                raw.sqlite3_bind_int(s, 4, (int)row.Status);
                raw.sqlite3_bind_int64(s, 5, row.DurationMs);
                if (row.MessageId == 0)
                {
                    raw.sqlite3_bind_null(s, 6);
                }
                else
                {
                    raw.sqlite3_bind_int64(s, 6, row.MessageId);
                }

                Step(s);
            }
        }
        finally
        {
            ArrayPool<Row>.Shared.Return(rows);
        }
    }

    public void Dispose()
    {
        // Null-safe: a constructor that failed midway disposes what it prepared.
        _findTest?.Dispose();
        _insertTest?.Dispose();
        _findMessage?.Dispose();
        _insertMessage?.Dispose();
        _findGroup?.Dispose();
        _insertGroup?.Dispose();
        _insertExecution?.Dispose();
    }

    private long TestId(long projectKey, string suite, string name, string? file, long timestampMs)
    {
        var key = (projectKey, NameHash(suite, name));
        if (_tests.TryGetValue(key, out var id))
        {
            return id;
        }

        raw.sqlite3_bind_int64(_findTest, 1, projectKey);
        BindText(_findTest, 2, suite);
        BindText(_findTest, 3, name);
        if (!TryReadId(_findTest, out id))
        {
            raw.sqlite3_bind_int64(_insertTest, 1, projectKey);
            BindText(_insertTest, 2, suite);
            BindText(_insertTest, 3, name);
            BindText(_insertTest, 4, file);
            raw.sqlite3_bind_int64(_insertTest, 5, timestampMs);
            Step(_insertTest);
            id = raw.sqlite3_last_insert_rowid(_db);
        }

        _tests[key] = id;
        _journal.Add((0, key));
        return id;
    }

    private static UInt128 NameHash(string suite, string name)
    {
        var hash = new XxHash128();
        hash.Append(MemoryMarshal.AsBytes(suite.AsSpan()));
        hash.Append([0, 0]); // a NUL character: never inside a name, so ("ab", "c") and ("a", "bc") differ
        hash.Append(MemoryMarshal.AsBytes(name.AsSpan()));
        return hash.GetCurrentHashAsUInt128();
    }

    private long MessageId(long projectKey, string message)
    {
        var hash = (long)XxHash64.HashToUInt64(MemoryMarshal.AsBytes(message.AsSpan()));
        var key = (projectKey, hash);
        if (_messages.TryGetValue(key, out var id))
        {
            return id;
        }

        raw.sqlite3_bind_int64(_findMessage, 1, projectKey);
        raw.sqlite3_bind_int64(_findMessage, 2, hash);
        if (!TryReadId(_findMessage, out id))
        {
            var group = GroupId(projectKey, FailurePattern.Of(message));
            raw.sqlite3_bind_int64(_insertMessage, 1, projectKey);
            raw.sqlite3_bind_int64(_insertMessage, 2, hash);
            raw.sqlite3_bind_int64(_insertMessage, 3, group);
            BindText(_insertMessage, 4, message);
            Step(_insertMessage);
            id = raw.sqlite3_last_insert_rowid(_db);
        }

        _messages[key] = id;
        _journal.Add((1, key));
        return id;
    }

    private long GroupId(long projectKey, string pattern)
    {
        var fingerprint = FailurePattern.Fingerprint(pattern);
        var key = (projectKey, fingerprint);
        if (_groups.TryGetValue(key, out var id))
        {
            return id;
        }

        raw.sqlite3_bind_int64(_findGroup, 1, projectKey);
        raw.sqlite3_bind_int64(_findGroup, 2, fingerprint);
        if (!TryReadId(_findGroup, out id))
        {
            raw.sqlite3_bind_int64(_insertGroup, 1, projectKey);
            raw.sqlite3_bind_int64(_insertGroup, 2, fingerprint);
            BindText(_insertGroup, 3, pattern);
            Step(_insertGroup);
            id = raw.sqlite3_last_insert_rowid(_db);
        }

        _groups[key] = id;
        _journal.Add((2, key));
        return id;
    }

    private bool TryReadId(sqlite3_stmt query, out long id)
    {
        try
        {
            var rc = raw.sqlite3_step(query);
            if (rc == raw.SQLITE_ROW)
            {
                id = raw.sqlite3_column_int64(query, 0);
                return true;
            }

            Check(rc);
            id = 0;
            return false;
        }
        finally
        {
            raw.sqlite3_reset(query);
        }
    }

    private void Step(sqlite3_stmt statement) => RawSqlite.Step(_db, statement);

    private sqlite3_stmt Prepare(string sql) => RawSqlite.Prepare(_db, sql);

    private void Check(int rc) => RawSqlite.Check(_db, rc);

    private static void BindText(sqlite3_stmt statement, int index, string? text) => RawSqlite.BindText(statement, index, text);

    private readonly record struct Row(long TestId, int Attempt, TestCaseStatus Status, long DurationMs, long MessageId);
}
