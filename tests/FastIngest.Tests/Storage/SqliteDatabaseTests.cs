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
    public void SqliteIsConfiguredBeforeItStartsSoItKeepsNoAllocationStatistics()
    {
        // SqliteDatabase turns SQLite's mutexes and allocation statistics off before SQLite initialises; a
        // configuration that came too late would fail quietly and leave both on. With statistics off, SQLite
        // reports no memory in use however much it holds.
        using var temp = new FastIngest.Tests.Infrastructure.TempSqliteDatabase("config");
        temp.Scalar("SELECT count(*) FROM test_runs;");

        var used = SQLitePCL.raw.sqlite3_memory_used();
        Assert.True(used == 0, $"SQLite counts {used} bytes in use: its allocation statistics are on, so its configuration came too late");
    }

    [Fact]
    public void PooledConnectionLeftUnsyncedComesBackFullySynced()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("fastingest-db-").FullName, "t.db");
        using var database = new SqliteDatabase(path, DurabilityMode.Full);
        database.Migrate();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();

        using (var unsynced = database.OpenWriter(unsynced: true))
        {
            Assert.Equal(1, Synchronous(unsynced)); // NORMAL
        }

        // The pool hands the same native connection back; it must not keep the writer's relaxed setting.
        for (var i = 0; i < 3; i++)
        {
            using var nextLease = database.Read();
            var next = nextLease.Connection;
            Assert.Equal(2, Synchronous(next)); // FULL
        }
    }

    [Fact]
    public void ReadConnectionsRefuseWritesEvenWhenThePoolHandsBackTheWritersNativeConnection()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("fastingest-db-").FullName, "t.db");
        using var database = new SqliteDatabase(path, DurabilityMode.Full);
        database.Migrate();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();

        using (var writer = database.OpenWriter(unsynced: true))
        using (var insert = writer.CreateCommand())
        {
            insert.CommandText = "INSERT INTO orgs (public_id, name, created_at) VALUES ('o-writer', 'writer', 1);";
            Assert.Equal(1, insert.ExecuteNonQuery());
        }

        for (var i = 0; i < 3; i++)
        {
            using var readerLease = database.Read();
            var reader = readerLease.Connection;
            using var write = reader.CreateCommand();
            write.CommandText = $"INSERT INTO orgs (public_id, name, created_at) VALUES ('o-{i}', 'bypass-{i}', 1);";
            var refused = Assert.Throws<Microsoft.Data.Sqlite.SqliteException>(() => write.ExecuteNonQuery());
            Assert.True(refused.SqliteErrorCode == 8, $"expected SQLITE_READONLY (8), got {refused.SqliteErrorCode}: {refused.Message}");
            using var count = reader.CreateCommand();
            count.CommandText = "SELECT count(*) FROM orgs;";
            Assert.Equal(1L, (long)count.ExecuteScalar()!); // reads still work, and see the writer's commit
        }
    }
}
