using Npgsql;

namespace FastIngest.Storage.Postgres;

/// <summary>A session advisory lock on a connection of its own, held until disposed: nodes starting together take turns.</summary>
public sealed class PostgresStartupLock(PostgresDatabase database) : IStartupLock
{
    /// <summary>"fi-start" in ASCII.</summary>
    private const long LockKey = 0x66692d7374617274;

    public async Task<IAsyncDisposable> AcquireAsync(CancellationToken cancellation)
    {
        var connection = await database.DataSource.OpenConnectionAsync(cancellation);
        try
        {
            await using var command = new NpgsqlCommand($"SELECT pg_advisory_lock({LockKey});", connection);
            await command.ExecuteNonQueryAsync(cancellation);
            return new Held(connection);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private sealed class Held(NpgsqlConnection connection) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await using (connection)
            {
                await using var command = new NpgsqlCommand($"SELECT pg_advisory_unlock({LockKey});", connection);
                await command.ExecuteNonQueryAsync();
            }
        }
    }
}
