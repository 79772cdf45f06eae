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

    public override void Close()
    {
        // Raw statements are ours to finalize; the commands Microsoft.Data.Sqlite disposes itself.
        Statements.FinalizeRaw();
        base.Close();
    }
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
/// layout). A connection is used by one caller at a time, so nothing here locks. A statement in use is taken out
/// and put back when done; a second use of the same text meanwhile (a nested read) prepares a second one, which
/// is dropped on return. The cache is bounded, so query texts that vary never grow it past
/// <see cref="Capacity"/>: beyond it, statements are simply not kept.
/// </summary>
public sealed class SqliteStatementCache
{
    public const int Capacity = 64;

    /// <summary>The "layout" of commands built by hand: their callers add their own parameters after renting.</summary>
    private static readonly object s_byHand = new();

    private readonly StatementCachingConnection _connection;
    private readonly StatementCacheCounters _counters;
    private readonly Dictionary<(string Sql, object Layout), SqliteCommand> _commands = [];
    private readonly Dictionary<string, sqlite3_stmt> _raw = new(StringComparer.Ordinal);

    internal SqliteStatementCache(StatementCachingConnection connection, StatementCacheCounters counters)
    {
        _connection = connection;
        _counters = counters;
    }

    /// <summary>How many statements are kept, idle, right now (commands and raw statements).</summary>
    public int Count => _commands.Count + _raw.Count;

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
    internal SqliteCommand? Take(string sql, object layout)
    {
        if (_commands.Remove((sql, layout), out var command))
        {
            _counters.Hit();
            return command;
        }

        _counters.Miss();
        return null;
    }

    /// <summary>Keeps a command whose reader is closed for the next use; false when it is not kept (the caller disposes it).</summary>
    internal bool Return(SqliteCommand command, object layout)
    {
        if (command.Connection != _connection || _commands.Count + _raw.Count >= Capacity)
        {
            return false;
        }

        command.Transaction = null;
        return _commands.TryAdd((command.CommandText, layout), command);
    }

    /// <summary>
    /// A statement on SQLite's C API (for reads that stream blobs as spans), prepared once per connection. Give it
    /// back with <see cref="ReturnRaw"/>, which resets it; one not given back (an exception) is finalized here.
    /// </summary>
    internal sqlite3_stmt TakeRaw(string sql)
    {
        if (_raw.Remove(sql, out var statement))
        {
            _counters.Hit();
            return statement;
        }

        _counters.Miss();
        return RawSqlite.Prepare(_connection.Handle!, sql);
    }

    internal void ReturnRaw(string sql, sqlite3_stmt statement)
    {
        raw.sqlite3_reset(statement);
        raw.sqlite3_clear_bindings(statement);
        if (_commands.Count + _raw.Count >= Capacity || !_raw.TryAdd(sql, statement))
        {
            statement.Dispose();
        }
    }

    internal void FinalizeRaw()
    {
        foreach (var statement in _raw.Values)
        {
            statement.Dispose();
        }

        _raw.Clear();
        _commands.Clear(); // the connection disposes them as it closes
    }
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
