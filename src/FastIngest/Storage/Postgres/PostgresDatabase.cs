using System.Net.Sockets;
using Npgsql;

namespace FastIngest.Storage.Postgres;

/// <summary>
/// The PostgreSQL backend's connections: one pooled <see cref="NpgsqlDataSource"/> built with the slim builder (the
/// Native AOT-compatible one: only the plain types this schema uses), and the schema it owns. Any number of
/// FastIngest processes may share one database; migrations take an advisory lock, so they apply once.
/// </summary>
public sealed class PostgresDatabase : IAsyncDisposable, IStorageStatistics
{
    private PostgresDatabase(NpgsqlDataSource dataSource, string description)
    {
        DataSource = dataSource;
        Description = description;
    }

    public NpgsqlDataSource DataSource { get; }

    /// <summary>Host, port and database, for messages (never the password).</summary>
    public string Description { get; }

    /// <summary>
    /// Opens the data source for a connection string (<c>Host=...;Username=...</c>) or a URL
    /// (<c>postgres://user:password@host:port/database?sslmode=require</c>).
    /// </summary>
    public static PostgresDatabase Create(string connection)
    {
        var given = new NpgsqlConnectionStringBuilder(ToKeywords(connection));
        var builder = new NpgsqlConnectionStringBuilder(given.ConnectionString);
        // Defaults only where the operator said nothing: with many nodes, their pools add up against the
        // server's max_connections, and the operator sizes them (README: several nodes).
        if (!given.ContainsKey("Maximum Pool Size"))
        {
            builder.MaxPoolSize = Math.Max(20, 4 * Environment.ProcessorCount);
        }

        if (!given.ContainsKey("Application Name"))
        {
            builder.ApplicationName = "fastingest";
        }
        // Arrays carry a batch's tests, messages and executions in one statement (unnest).
        var dataSource = new NpgsqlSlimDataSourceBuilder(builder.ConnectionString).EnableArrays().Build();
        return new PostgresDatabase(dataSource, $"{builder.Host}:{builder.Port}/{builder.Database}");
    }

    /// <summary>
    /// Checks the server is reachable and applies pending migrations. Bad configuration becomes one clear
    /// <see cref="InvalidOperationException"/> (unreachable server, wrong password, missing database, a schema
    /// newer than this binary), never a stack trace.
    /// </summary>
    public async Task MigrateAsync(CancellationToken cancellation = default)
    {
        try
        {
            await using var connection = await DataSource.OpenConnectionAsync(cancellation);
            if (connection.PostgreSqlVersion.Major < 11)
            {
                throw new InvalidOperationException($"PostgreSQL at {Description} is version {connection.PostgreSqlVersion}; FastIngest needs 11 or newer.");
            }

            await using (var encoding = new NpgsqlCommand("SHOW server_encoding;", connection))
            {
                if (await encoding.ExecuteScalarAsync(cancellation) is not "UTF8")
                {
                    throw new InvalidOperationException($"the database on {Description} is not UTF8-encoded; create it with ENCODING 'UTF8'.");
                }
            }

            await PostgresMigrations.ApplyAsync(connection, cancellation);
        }
        catch (PostgresException e)
        {
            throw new InvalidOperationException(Explain(e), e);
        }
        catch (NpgsqlException e) when (e.InnerException is SocketException or TimeoutException || e.InnerException?.InnerException is SocketException)
        {
            throw new InvalidOperationException($"cannot reach PostgreSQL at {Description}: {(e.InnerException ?? e).Message}", e);
        }
    }

    public ValueTask DisposeAsync() => DataSource.DisposeAsync();

    public Sqlite.StatementCacheCounters? StatementCache => null;

    /// <summary>The database's size as PostgreSQL counts it (tables, indexes, TOAST); its WAL is the server's own.</summary>
    public async ValueTask<IReadOnlyList<(string Name, long Bytes)>> SizesAsync(CancellationToken cancellation)
    {
        await using var command = DataSource.CreateCommand("SELECT pg_database_size(current_database());");
        return [("db", (long)(await command.ExecuteScalarAsync(cancellation))!)];
    }

    private string Explain(PostgresException e) => e.SqlState switch
    {
        PostgresErrorCodes.InvalidPassword => $"PostgreSQL at {Description} refused the password for this user.",
        PostgresErrorCodes.InvalidAuthorizationSpecification => $"PostgreSQL at {Description} refused this user ({e.MessageText}).",
        PostgresErrorCodes.InvalidCatalogName => $"the database does not exist on {Description}; create it first (CREATE DATABASE ...).",
        PostgresErrorCodes.InsufficientPrivilege => $"the user may not create FastIngest's tables in {Description} ({e.MessageText}).",
        _ => $"PostgreSQL at {Description} answered {e.SqlState}: {e.MessageText}",
    };

    /// <summary>A <c>postgres://</c> or <c>postgresql://</c> URL as Npgsql keywords; anything else is taken as keywords.</summary>
    internal static string ToKeywords(string connection)
    {
        if (!connection.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase)
            && !connection.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            return connection;
        }

        var url = new Uri(connection);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = url.Host,
            Port = url.IsDefaultPort || url.Port <= 0 ? 5432 : url.Port,
            Database = Uri.UnescapeDataString(url.AbsolutePath.TrimStart('/')) is { Length: > 0 } database ? database : null,
        };
        if (url.UserInfo is { Length: > 0 } userInfo)
        {
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            builder.Username = Uri.UnescapeDataString(colon < 0 ? userInfo : userInfo[..colon]);
            if (colon >= 0)
            {
                builder.Password = Uri.UnescapeDataString(userInfo[(colon + 1)..]);
            }
        }

        foreach (var pair in url.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString(equals < 0 ? pair : pair[..equals]);
            var value = equals < 0 ? "" : Uri.UnescapeDataString(pair[(equals + 1)..]);
            builder[key.Replace('_', ' ')] = value; // sslmode, application_name, ...: Npgsql's keywords, spaces or not
        }

        return builder.ConnectionString;
    }
}
