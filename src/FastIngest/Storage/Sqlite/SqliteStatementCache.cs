using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// A SQLite connection that lives as long as its pool (or the writer) and keeps the statements it ran prepared.
/// Microsoft.Data.Sqlite disposes every command, and so every prepared statement, when a connection closes, even a
/// pooled one; a connection that never closes between uses keeps them, so each query text is compiled once per
/// connection instead of once per call.
/// </summary>
public sealed class StatementCachingConnection : SqliteConnection
{
    public StatementCachingConnection(string connectionString, StatementCacheCounters counters)
        : base(connectionString) => Statements = new SqliteStatementCache(this, counters);

    public SqliteStatementCache Statements { get; }

    /// <summary>The file-size cap (<see cref="SqliteDatabase.MaxPageCount"/>) last applied to this connection.</summary>
    internal long? PageCap { get; set; }

    /// <summary>The transaction this connection has open, which a reused command must carry (ADO.NET checks).</summary>
    internal SqliteTransaction? OpenTransaction => Transaction;

    /// <summary>
    /// Whether the connection holds nothing: no transaction, and no statement mid-step keeping a read snapshot (and
    /// with it every WAL frame after it). One call into SQLite: <c>sqlite3_txn_state</c> (3.34+), which SQLitePCLRaw
    /// does not bind, from the same library (statically linked into the AOT binary, the system's under the JIT). On
    /// an older SQLite only an open transaction is seen.
    /// </summary>
    internal bool IsAtRest => State == System.Data.ConnectionState.Open && HoldsNothing(Handle!);

    private static int s_txnState; // 0 unknown, 1 available, -1 missing

    private static bool HoldsNothing(sqlite3 handle)
    {
        if (Volatile.Read(ref s_txnState) >= 0)
        {
            try
            {
                var held = TxnState(handle.DangerousGetHandle(), IntPtr.Zero) != 0;
                Volatile.Write(ref s_txnState, 1);
                return !held;
            }
            catch (EntryPointNotFoundException)
            {
                Volatile.Write(ref s_txnState, -1);
            }
        }

        return raw.sqlite3_get_autocommit(handle) != 0;
    }

    [DllImport("sqlite3", EntryPoint = "sqlite3_txn_state", CallingConvention = CallingConvention.Cdecl)]
    private static extern int TxnState(IntPtr db, IntPtr schema);

    /// <summary>Every command this connection creates can tell whether its reader is still open (see <see cref="SqliteStatementCache.Return(SqliteCommand, object)"/>).</summary>
    public override SqliteCommand CreateCommand() => new ReusableCommand
    {
        Connection = this,
        CommandTimeout = DefaultTimeout,
        Transaction = Transaction,
    };

    public override void Close()
    {
        if (State == System.Data.ConnectionState.Open)
        {
            // What a caller left behind (a bug above): raw statements it never gave back are reset (their reads end),
            // and a transaction is rolled back, as Close would do anyway.
            Statements.ResetRented();
            Transaction?.Dispose();
            if (!IsAtRest)
            {
                // Still holding something (a reader, or a transaction begun by hand): the native connection must not
                // go back to Microsoft.Data.Sqlite's pool like that, so this one is closed for good instead.
                ClearPool(this);
            }
        }

        Statements.Clear();
        base.Close();
    }
}

/// <summary>A command whose open reader, if any, is visible to the statement cache.</summary>
internal sealed class ReusableCommand : SqliteCommand
{
    public bool HasOpenReader => DataReader is not null;
}

/// <summary>Commands built by hand (not through Dapper) on any SQLite connection.</summary>
public static class SqliteCommands
{
    /// <summary>
    /// A command for <paramref name="sql"/> in the connection's open transaction, if any: on a
    /// <see cref="StatementCachingConnection"/> the one it prepared last time (parameters cleared for the caller to
    /// add), otherwise a new one. Dispose it to give it back.
    /// </summary>
    public static RentedCommand Rent(this SqliteConnection connection, string sql)
    {
        if (connection is StatementCachingConnection caching)
        {
            return caching.Statements.Rent(sql);
        }

        var command = connection.CreateCommand();
        command.CommandText = sql;
        return new RentedCommand(command, null);
    }

    /// <summary>The one number a statement without parameters answers, through the connection's statement cache.</summary>
    public static long ScalarInt64(this SqliteConnection connection, string sql)
    {
        using var command = connection.Rent(sql);
        return (long)command.ExecuteScalar()!;
    }

    /// <summary>
    /// A statement on SQLite's C API (for reads that stream blobs as spans or fold row by row without boxing),
    /// prepared once per <see cref="StatementCachingConnection"/>. Dispose it to reset it and give it back.
    /// </summary>
    public static RentedStatement RentRaw(this SqliteConnection connection, string sql) =>
        connection is StatementCachingConnection caching
            ? new RentedStatement(sql, caching.Statements.TakeRaw(sql), caching.Statements)
            : new RentedStatement(sql, RawSqlite.Prepare(connection.Handle!, sql), null);
}

/// <summary>Prepared-statement reuse on one backend, read by <c>/metrics</c> (hits, misses).</summary>
public sealed class StatementCacheCounters
{
    private long _hits;
    private long _misses;

    public long Hits => Interlocked.Read(ref _hits);

    public long Misses => Interlocked.Read(ref _misses);

    internal void Hit() => Interlocked.Increment(ref _hits);

    internal void Miss() => Interlocked.Increment(ref _misses);
}

/// <summary>
/// The idle prepared statements of one connection, by query text (and, for Dapper, by the call site's parameter
/// layout), least recently used first out. A connection is used by one caller at a time, so nothing here locks. A
/// statement in use is taken out and put back when done; a second use of the same text meanwhile (a nested read)
/// prepares a second one, which is dropped on return. Beyond <see cref="Capacity"/> idle statements the least
/// recently used one is finalized, so texts that vary cost a slot each only until they stop being used.
/// </summary>
public sealed class SqliteStatementCache
{
    /// <summary>About twice the texts one connection runs (reads about 70, the writer about 70).</summary>
    public const int Capacity = 128;

    /// <summary>The "layout" of commands built by hand: their callers add their own parameters after renting.</summary>
    private static readonly object s_byHand = new();

    private readonly StatementCachingConnection _connection;
    private readonly StatementCacheCounters _counters;
    private readonly Dictionary<(string Sql, object? Layout), LinkedListNode<Idle>> _idle = [];
    private readonly LinkedList<Idle> _byUse = new(); // least recently given back first
    private readonly List<sqlite3_stmt> _rentedRaw = [];

    internal SqliteStatementCache(StatementCachingConnection connection, StatementCacheCounters counters)
    {
        _connection = connection;
        _counters = counters;
    }

    /// <summary>How many statements are kept, idle, right now (commands and raw statements).</summary>
    public int Count => _idle.Count;

    internal RentedCommand Rent(string sql)
    {
        var command = Take(sql, s_byHand);
        if (command is null)
        {
            command = _connection.CreateCommand();
            command.CommandText = sql;
        }
        else
        {
            command.Parameters.Clear();
        }

        command.Transaction = _connection.OpenTransaction;
        return new RentedCommand(command, this);
    }

    internal bool Return(SqliteCommand command) => Return(command, s_byHand);

    /// <summary>The idle command prepared for this text and layout, or null (a miss: the caller builds one).</summary>
    internal SqliteCommand? Take(string sql, object layout) => (SqliteCommand?)TakeIdle(sql, layout);

    /// <summary>
    /// Keeps a command for the next use of its text; false when it is not kept (the caller disposes it): another
    /// connection's, one whose reader is still open (its next user would find it busy), or a second copy.
    /// </summary>
    internal bool Return(SqliteCommand command, object layout)
    {
        if (command.Connection != _connection || command is not ReusableCommand { HasOpenReader: false })
        {
            return false;
        }

        command.Transaction = null;
        return Keep(command.CommandText, layout, command);
    }

    /// <summary>
    /// A statement on SQLite's C API, prepared once per connection. Give it back with <see cref="ReturnRaw"/>, which
    /// resets it; one that is not given back is reset when the connection closes, and prepared again next time.
    /// </summary>
    internal sqlite3_stmt TakeRaw(string sql)
    {
        var statement = (sqlite3_stmt?)TakeIdle(sql, null) ?? RawSqlite.Prepare(_connection.Handle!, sql);
        _rentedRaw.Add(statement);
        return statement;
    }

    internal void ReturnRaw(string sql, sqlite3_stmt statement)
    {
        _rentedRaw.Remove(statement);
        raw.sqlite3_reset(statement);
        raw.sqlite3_clear_bindings(statement);
        if (!Keep(sql, null, statement))
        {
            statement.Dispose();
        }
    }

    /// <summary>Resets the raw statements rented and never given back, so none keeps a read open (the connection is closing).</summary>
    internal void ResetRented()
    {
        foreach (var statement in _rentedRaw)
        {
            raw.sqlite3_reset(statement);
        }

        _rentedRaw.Clear();
    }

    /// <summary>Finalizes every idle statement (the connection is closing).</summary>
    internal void Clear()
    {
        foreach (var idle in _byUse)
        {
            Dispose(idle.Statement);
        }

        _byUse.Clear();
        _idle.Clear();
    }

    private object? TakeIdle(string sql, object? layout)
    {
        if (_idle.Remove((sql, layout), out var node))
        {
            _byUse.Remove(node);
            _counters.Hit();
            return node.Value.Statement;
        }

        _counters.Miss();
        return null;
    }

    private bool Keep(string sql, object? layout, object statement)
    {
        if (_idle.ContainsKey((sql, layout)))
        {
            return false;
        }

        if (_idle.Count >= Capacity)
        {
            var oldest = _byUse.First!;
            _byUse.RemoveFirst();
            _idle.Remove((oldest.Value.Sql, oldest.Value.Layout));
            Dispose(oldest.Value.Statement);
        }

        _idle.Add((sql, layout), _byUse.AddLast(new Idle(sql, layout, statement)));
        return true;
    }

    private static void Dispose(object statement)
    {
        if (statement is IDisposable disposable)
        {
            disposable.Dispose(); // a command (and its statements) or a raw statement (finalized)
        }
    }

    /// <summary>An idle statement: a <see cref="SqliteCommand"/> (layout = its call site's) or a raw <see cref="sqlite3_stmt"/> (layout null).</summary>
    private readonly record struct Idle(string Sql, object? Layout, object Statement);
}

/// <summary>A command rented from a connection's statement cache: use it, then dispose to give it back.</summary>
public readonly struct RentedCommand : IDisposable
{
    private readonly SqliteStatementCache? _cache;

    internal RentedCommand(SqliteCommand command, SqliteStatementCache? cache)
    {
        Command = command;
        _cache = cache;
    }

    public SqliteCommand Command { get; }

    public SqliteParameterCollection Parameters => Command.Parameters;

    public SqliteDataReader ExecuteReader() => Command.ExecuteReader();

    public int ExecuteNonQuery() => Command.ExecuteNonQuery();

    public object? ExecuteScalar() => Command.ExecuteScalar();

    public void Dispose()
    {
        if (_cache?.Return(Command) != true)
        {
            Command.Dispose();
        }
    }
}

/// <summary>A raw statement rented from a connection's statement cache: step it, then dispose to reset it and give it back.</summary>
public readonly struct RentedStatement : IDisposable
{
    private readonly string _sql;
    private readonly SqliteStatementCache? _cache;

    internal RentedStatement(string sql, sqlite3_stmt statement, SqliteStatementCache? cache)
    {
        _sql = sql;
        Statement = statement;
        _cache = cache;
    }

    public sqlite3_stmt Statement { get; }

    public void Dispose()
    {
        if (_cache is null)
        {
            Statement.Dispose(); // finalizes it
            return;
        }

        _cache.ReturnRaw(_sql, Statement);
    }
}
