using FastIngest.Configuration;
using FastIngest.Storage.Sqlite;
using Microsoft.Data.Sqlite;

namespace FastIngest.Tests.Infrastructure;

/// <summary>A migrated SQLite database in a temp directory of its own, closed and deleted on dispose.</summary>
internal sealed class TempSqliteDatabase : IDisposable
{
    private readonly string _directory;

    public TempSqliteDatabase(string name)
    {
        _directory = Directory.CreateTempSubdirectory($"fastingest-{name}-").FullName;
        Database = new SqliteDatabase(Path.Combine(_directory, "t.db"), DurabilityMode.Normal);
        Database.Migrate();
    }

    public SqliteDatabase Database { get; }

    /// <summary>One number read on a lent connection.</summary>
    public long Scalar(string sql)
    {
        using var lease = Database.Read();
        using var command = lease.Connection.Rent(sql);
        return (long)command.ExecuteScalar()!;
    }

    public void Dispose()
    {
        Database.Dispose();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
