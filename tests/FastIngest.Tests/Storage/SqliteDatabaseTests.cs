using FastIngest.Configuration;
using FastIngest.Storage.Sqlite;

namespace FastIngest.Tests.Storage;

public sealed class SqliteDatabaseTests
{
    private static long Synchronous(Microsoft.Data.Sqlite.SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA synchronous;";
        return (long)command.ExecuteScalar()!;
    }

    [Fact]
    public void PooledConnectionLeftUnsyncedComesBackFullySynced()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("fastingest-db-").FullName, "t.db");
        var database = new SqliteDatabase(path, DurabilityMode.Full);
        database.Migrate();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();

        using (var unsynced = database.OpenWriter(unsynced: true))
        {
            Assert.Equal(1, Synchronous(unsynced)); // NORMAL
        }

        // The pool hands the same native connection back; it must not keep the writer's relaxed setting.
        for (var i = 0; i < 3; i++)
        {
            using var next = database.Open();
            Assert.Equal(2, Synchronous(next)); // FULL
        }
    }
}
