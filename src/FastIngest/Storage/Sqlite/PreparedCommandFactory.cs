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
/// Dapper's default behaviour.
/// </summary>
public abstract class PreparedCommandFactory<T> : CommandFactory<T>
{
    public override DbCommand GetCommand(DbConnection connection, string sql, CommandType commandType, T args)
    {
        if (connection is StatementCachingConnection caching && caching.Statements.Take(sql, this) is { } cached)
        {
            // Same call site, same parameter layout: only the values change (the generated factory sets them by
            // position). Dapper.AOT's reuse helper does exactly that to the command it is handed.
            DbCommand? handed = cached;
            var command = TryReuseThreadStatic(ref handed, sql, commandType, args)!;

            // Updating a value leaves the parameter's Size as the first use set it (Dapper.AOT: 4000 for a short
            // string), and Microsoft.Data.Sqlite truncates text to Size: a longer value than last time must not lose
            // its tail. The rule is Dapper's own (SetValueWithDefaultSize).
            var parameters = command.Parameters;
            for (var i = 0; i < parameters.Count; i++)
            {
                if (parameters[i].Value is string text)
                {
                    parameters[i].Size = text.Length <= 4000 ? 4000 : -1;
                }
            }

            return command;
        }

        return base.GetCommand(connection, sql, commandType, args);
    }

    public override bool TryRecycle(DbCommand command) =>
        command is SqliteCommand { Connection: StatementCachingConnection caching } sqlite && caching.Statements.Return(sqlite, this);
}
