using FastIngest.Configuration;
using FastIngest.Storage.Sqlite;

namespace FastIngest.Benchmarks;

/// <summary>A fresh WAL database in a temp directory, migrated, for one benchmark class.</summary>
internal sealed class BenchmarkDatabase : IDisposable
{
    public BenchmarkDatabase(DurabilityMode durability = DurabilityMode.Full)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("fastingest-bench-").FullName;
        Database = new SqliteDatabase(Path.Combine(Directory, "fastingest.db"), durability);
        Database.Migrate();
    }

    public string Directory { get; }

    public SqliteDatabase Database { get; }

    public void Execute(string sql)
    {
        using var connection = Database.OpenWriter(); // setup writes, before anything else runs
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public void Dispose()
    {
        Database.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
