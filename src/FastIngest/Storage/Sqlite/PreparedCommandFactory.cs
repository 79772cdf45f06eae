using System.Data;
using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;

[module: CommandFactory<FastIngest.Storage.Sqlite.PreparedCommandFactory<object>>]

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// The base of every command factory Dapper.AOT generates in this assembly: on a
/// <see cref="StatementCachingConnection"/> a query reuses the command (and so the prepared statement) it ran last
/// time at the same call site, with only its parameter values updated; after the reader closes, the command goes
/// back to the connection's cache instead of being disposed. Any other connection (PostgreSQL, migrations) gets
/// Dapper's default behaviour. Not for a call site that posts a sequence of parameter objects: Dapper.AOT updates
/// the values of rows after the first itself, keeping the first row's sizes (none here does).
/// </summary>
public abstract class PreparedCommandFactory<T> : CommandFactory<T>
{
    /// <summary>The size Dapper gives a string parameter of at most this many characters (SetValueWithDefaultSize).</summary>
    private const int DefaultStringSize = 4000;

    public override DbCommand GetCommand(DbConnection connection, string sql, CommandType commandType, T args)
    {
        if (connection is not StatementCachingConnection caching || caching.Statements.Take(sql, this) is not { } cached)
        {
            return base.GetCommand(connection, sql, commandType, args);
        }

        try
        {
            // Same call site, same parameter layout: only the values change (the generated factory sets them by
            // position or name). Dapper.AOT's reuse helper does exactly that to the command it is handed.
            DbCommand? handed = cached;
            var command = TryReuseThreadStatic(ref handed, sql, commandType, args)!;

            // Updating a value leaves the parameter's size as the first use set it: 4000 for a short string, and
            // Microsoft.Data.Sqlite truncates text to the size. A longer value than last time must keep its tail.
            var parameters = command.Parameters;
            for (var i = 0; i < parameters.Count; i++)
            {
                if (parameters[i] is { Size: DefaultStringSize, Value: string { Length: > DefaultStringSize } })
                {
                    parameters[i].Size = -1;
                }
            }

            return command;
        }
        catch
        {
            cached.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Back into the cache under the text it ran. A factory that rewrites its text (list expansion) would park it
    /// under the rewritten one, which its call site never asks for: it is finalized once it is the least recently used.
    /// </summary>
    public override bool TryRecycle(DbCommand command) =>
        command is SqliteCommand { Connection: StatementCachingConnection caching } sqlite && caching.Statements.Return(sqlite, this);
}
