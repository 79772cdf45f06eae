using FastIngest.Configuration;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// Opens connections to the embedded database with the same pragmas every time, and owns the schema.
/// </summary>
public sealed class SqliteDatabase : IStorageStatistics, IDisposable
{
    private static readonly Lock s_providerLock = new();
    private static bool s_providerSet;

    /// <summary>
    /// Why SQLite kept its serialized mode and allocation statistics (it was initialised before the server could
    /// configure it), or null: correct either way, only slower, so the server says so at start.
    /// </summary>
    public static string? ConfigurationFailure { get; private set; }
    private readonly string _connectionString;
    private readonly string _connectionPragmas;

    /// <summary>
    /// Read connections kept open between uses, each with its prepared statements, most recently given back last (so
    /// a light load keeps reusing the same few warm ones). More readers than this at once open extra connections,
    /// closed again when they are done; and when one is given back, the longest-idle one is closed if it sat unused
    /// for <see cref="s_idleTimeout"/>.
    /// </summary>
    private readonly List<(StatementCachingConnection Connection, long IdleSinceMs)> _idleReaders = [];
    private readonly int _maxIdleReaders = Math.Clamp(2 * Environment.ProcessorCount, 4, 32);
    private static readonly long s_idleTimeout = (long)TimeSpan.FromMinutes(5).TotalMilliseconds;
    private bool _disposed;

    /// <summary>
    /// The native connections already configured, with the page cap they got. Pooled opens hand back the same
    /// native connection, whose pragmas persist, so each is configured once instead of on every open (which
    /// cost about 100 µs per read request).
    /// </summary>
    private readonly ConditionalWeakTable<SQLitePCL.sqlite3, StrongBox<long?>> _configured = [];

    public SqliteDatabase(string path, DurabilityMode durability)
    {
        EnsureProvider();
        Path = path;
        PrivateFiles.EnsureDirectory(System.IO.Path.GetDirectoryName(path)!);
        PrivateFiles.EnsureFile(path);
        PrivateFiles.TightenIfExists(path + "-wal");
        PrivateFiles.TightenIfExists(path + "-shm");
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 5,
        }.ToString();

        // journal_mode is stored in the file; the rest is per native connection, applied on its first open.
        // wal_autocheckpoint=0: checkpoints belong to SqliteCheckpointer, never to a commit on the ingest path.
        var synchronous = durability == DurabilityMode.Full ? "FULL" : "NORMAL";
        _connectionPragmas =
            $"PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON; PRAGMA synchronous={synchronous}; PRAGMA wal_autocheckpoint=0;";
    }

    public string Path { get; }

    private int _cachedIdsEpoch;

    /// <summary>Moves on whenever rows the writer caches ids of (tests, messages, groups) are deleted.</summary>
    public int CachedIdsEpoch => Volatile.Read(ref _cachedIdsEpoch);

    /// <summary>Tells the writer its cached test, message and group ids may name deleted rows (call on the writer's thread).</summary>
    public void ForgetCachedIds() => Interlocked.Increment(ref _cachedIdsEpoch);

    /// <summary>
    /// Fault injection for tests: caps the file size of connections opened from now on
    /// (<c>PRAGMA max_page_count</c>), so a test can make commits fail the way a full disk does.
    /// </summary>
    internal long? MaxPageCount { get; set; }

    /// <summary>Prepared-statement reuse across every connection of this database (for <c>/metrics</c>).</summary>
    public StatementCacheCounters StatementCache { get; } = new();

    /// <summary>
    /// Lends a read connection, with the statements it prepared before. It is <c>query_only</c>: every write goes
    /// through the one writer (<see cref="SqliteWrites"/>), and a write path that tried to bypass it would fail here
    /// instead of racing it. Dispose the lease to give the connection back.
    /// </summary>
    public ReadLease Read()
    {
        StatementCachingConnection? connection = null;
        lock (_idleReaders)
        {
            if (_idleReaders.Count > 0)
            {
                connection = _idleReaders[^1].Connection;
                _idleReaders.RemoveAt(_idleReaders.Count - 1);
            }
        }

        if (connection is null)
        {
            return new ReadLease(this, Open(readOnly: true));
        }

        if (connection.PageCap != MaxPageCount)
        {
            try
            {
                Configure(connection, readOnly: true);
            }
            catch
            {
                connection.Dispose();
                throw;
            }
        }

        return new ReadLease(this, connection);
    }

    private void Return(StatementCachingConnection connection)
    {
        // Only a connection as it was lent is reused: open, outside any transaction and with no statement mid-step
        // (a reader left open would keep its snapshot, and with it every WAL frame after it, for as long as the
        // connection sat idle). Closing one that is not is what Microsoft.Data.Sqlite's own pool would do.
        if (!connection.IsAtRest)
        {
            connection.Dispose();
            return;
        }

        StatementCachingConnection? surplus = connection, stale = null;
        var now = Environment.TickCount64;
        lock (_idleReaders)
        {
            if (!_disposed && _idleReaders.Count < _maxIdleReaders)
            {
                _idleReaders.Add((connection, now));
                surplus = null;
            }

            // The least recently used one, if it sat idle long enough, is not worth its page cache any more.
            if (_idleReaders.Count > 1 && now - _idleReaders[0].IdleSinceMs > s_idleTimeout)
            {
                stale = _idleReaders[0].Connection;
                _idleReaders.RemoveAt(0);
            }
        }

        surplus?.Dispose();
        stale?.Dispose();
    }

    /// <summary>Closes the idle read connections (the writer's belongs to its store); leases still out close as they return.</summary>
    public void Dispose()
    {
        StatementCachingConnection[] idle;
        lock (_idleReaders)
        {
            _disposed = true;
            idle = [.. _idleReaders.Select(static r => r.Connection)];
            _idleReaders.Clear();
        }

        foreach (var connection in idle)
        {
            connection.Dispose();
        }
    }

    /// <summary>A read connection lent by <see cref="Read"/>; disposing gives it back, prepared statements and all.</summary>
    public readonly struct ReadLease : IDisposable
    {
        private readonly SqliteDatabase _database;

        internal ReadLease(SqliteDatabase database, StatementCachingConnection connection)
        {
            _database = database;
            Connection = connection;
        }

        public StatementCachingConnection Connection { get; }

        public void Dispose() => _database.Return(Connection);
    }

    private StatementCachingConnection Open(bool readOnly)
    {
        var connection = new StatementCachingConnection(_connectionString, StatementCache);
        connection.Open();
        var handle = connection.Handle!;

        var cap = MaxPageCount;
        if (readOnly && _configured.TryGetValue(handle, out var applied) && applied.Value == cap)
        {
            connection.PageCap = cap;
            return connection;
        }

        try
        {
            Configure(connection, readOnly);
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        return connection;
    }

    private void Configure(StatementCachingConnection connection, bool readOnly)
    {
        var handle = connection.Handle!;
        var cap = MaxPageCount;

        // A cap lifted by a test resets to SQLite's maximum, not to whatever the file happens to hold.
        var pragmas = _connectionPragmas + $" PRAGMA max_page_count={cap ?? 4294967294}; PRAGMA query_only={(readOnly ? 1 : 0)};";
        var rc = SQLitePCL.raw.sqlite3_exec(handle, pragmas);
        if (rc != SQLitePCL.raw.SQLITE_OK)
        {
            SqliteException.ThrowExceptionForRC(rc, handle);
        }

        connection.PageCap = cap;
        if (readOnly)
        {
            _configured.AddOrUpdate(handle, new StrongBox<long?>(cap));
        }
        else
        {
            _configured.Remove(handle); // back in the pool it must become a read connection again
        }
    }

    /// <summary>
    /// The one writer's connection (and the migrations' at startup). With <paramref name="unsynced"/> its commits do
    /// not fsync (<c>synchronous=NORMAL</c>): the writer syncs the WAL itself. Its native connection is marked
    /// unconfigured, so whoever gets it from the pool next has the read pragmas applied again.
    /// </summary>
    public StatementCachingConnection OpenWriter(bool unsynced = false)
    {
        var connection = Open(readOnly: false);
        if (!unsynced)
        {
            return connection;
        }

        var handle = connection.Handle!;
        var rc = SQLitePCL.raw.sqlite3_exec(handle, "PRAGMA synchronous=NORMAL;");
        if (rc != SQLitePCL.raw.SQLITE_OK)
        {
            connection.Dispose();
            SqliteException.ThrowExceptionForRC(rc, handle);
        }

        return connection;
    }

    /// <summary>Creates the file if needed, switches it to WAL and applies every pending migration.</summary>
    public void Migrate()
    {
        using var connection = OpenWriter();
        using (var wal = connection.CreateCommand())
        {
            wal.CommandText = "PRAGMA journal_mode=WAL;";
            var mode = (string?)wal.ExecuteScalar();
            if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException($"SQLite refused WAL mode (got '{mode}') for {Path}.");
            }
        }

        SqliteMigrations.Apply(connection);
    }

    public ValueTask<IReadOnlyList<(string Name, long Bytes)>> SizesAsync(CancellationToken cancellation) =>
        new([("db", SizeOf(Path)), ("wal", SizeOf(Path + "-wal"))]);

    private static long SizeOf(string path)
    {
        var file = new FileInfo(path);
        return file.Exists ? file.Length : 0;
    }

    /// <summary>
    /// The AOT binary links SQLite statically (DirectPInvoke "sqlite3"); under the JIT the same provider binds
    /// to the system's libsqlite3. Either way it is the plain sqlite3 provider, set once per process.
    /// </summary>
    private static void EnsureProvider()
    {
        // A lock, not a flag: a second caller must not open a connection before the first has finished (SQLite
        // would initialise in serialized mode).
        lock (s_providerLock)
        {
            if (s_providerSet)
            {
                return;
            }

            SQLitePCL.raw.SetProvider(new SQLitePCL.SQLite3Provider_sqlite3());
            // No connection is ever used by two threads at once (the writer's belongs to its loop, a reader, the
            // checkpointer's and the backup's included, to the lease or job that holds it), and none is left to
            // the finalizer, so SQLite's serialized mode only adds a mutex lock and unlock to every C API call: the
            // ingest writer makes a dozen or more per run (binds, step, reset), and with the allocator's mutex below
            // they cost about 1 µs per run on the writer's core (load/profile.sh, #21). Multi-thread mode drops them. It must be chosen before SQLite initialises; if
            // something initialised it first, the call fails and SQLite stays serialized, which is only slower.
            var threading = SQLitePCL.raw.sqlite3_config(SQLitePCL.raw.SQLITE_CONFIG_MULTITHREAD);
            // Nor allocation statistics: keeping them takes a global mutex in every sqlite3_malloc and free (binding
            // a text value copies it), and nothing here reads them (no sqlite3_memory_used, no soft heap limit).
            var statistics = SQLitePCL.raw.sqlite3_config(SQLitePCL.raw.SQLITE_CONFIG_MEMSTATUS, 0);
            if (threading != SQLitePCL.raw.SQLITE_OK || statistics != SQLitePCL.raw.SQLITE_OK)
            {
                ConfigurationFailure = $"sqlite3_config returned {threading} (multi-thread) and {statistics} (no statistics)";
            }

            s_providerSet = true;
        }
    }
}
