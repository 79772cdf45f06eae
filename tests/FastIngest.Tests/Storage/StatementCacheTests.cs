using System.Data;
using Dapper;
using FastIngest.Configuration;
using FastIngest.Storage.Sqlite;
using SQLitePCL;

namespace FastIngest.Tests.Storage;

/// <summary>
/// Prepared statements live as long as the connection that prepared them: read connections are lent and given back
/// with their statements, and a query run again on the same connection reuses its statement (a hit) instead of
/// compiling its text again (a miss).
/// </summary>
public sealed class StatementCacheTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("fastingest-statements-").FullName;
    private readonly SqliteDatabase _database;

    public StatementCacheTests()
    {
        _database = new SqliteDatabase(Path.Combine(_directory, "t.db"), DurabilityMode.Normal);
        _database.Migrate();
    }

    public void Dispose()
    {
        _database.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>The statements SQLite holds prepared on a connection, as SQLite itself lists them.</summary>
    private static List<sqlite3_stmt> NativeStatements(StatementCachingConnection connection)
    {
        var statements = new List<sqlite3_stmt>();
        for (var s = raw.sqlite3_next_stmt(connection.Handle!, null); s is not null; s = raw.sqlite3_next_stmt(connection.Handle!, s))
        {
            statements.Add(s);
        }

        return statements;
    }

    private (long Hits, long Misses) Counts() => (_database.StatementCache.Hits, _database.StatementCache.Misses);

    [Fact]
    public void AQueryRunAgainOnItsConnectionReusesTheStatementItPreparedThere()
    {
        const string sql = "SELECT count(*) FROM orgs WHERE name = $name;";
        StatementCachingConnection first;
        List<sqlite3_stmt> prepared;
        var before = Counts();
        using (var lease = _database.Read())
        {
            first = lease.Connection;
            using var command = first.Rent(sql);
            command.Parameters.AddWithValue("$name", "a");
            Assert.Equal(0L, command.ExecuteScalar());
            prepared = NativeStatements(first);
        }

        Assert.Equal((before.Hits, before.Misses + 1), Counts());
        using (var lease = _database.Read())
        {
            Assert.Same(first, lease.Connection); // the warm connection is lent again
            using var command = lease.Connection.Rent(sql);
            command.Parameters.AddWithValue("$name", "b");
            Assert.Equal(0L, command.ExecuteScalar());

            // Not compiled again: SQLite holds exactly the statements it held after the first run.
            Assert.Equal(prepared, NativeStatements(lease.Connection));
        }

        Assert.Equal((before.Hits + 1, before.Misses + 1), Counts());
    }

    [Fact]
    public void DapperQueriesReuseTheirCommandWithTheNewValues()
    {
        var factory = new EchoFactory();
        var before = Counts();
        using var lease = _database.Read();
        var connection = lease.Connection;
        Assert.Equal("first", connection.Command("SELECT $text;", CommandType.Text, 0, factory).ExecuteScalar<string>("first"));
        var statements = NativeStatements(connection).Count;
        Assert.Equal("second", connection.Command("SELECT $text;", CommandType.Text, 0, factory).ExecuteScalar<string>("second"));

        // A value longer than the first one's (which set the parameter's size) arrives whole, not cut at that size.
        var text = new string('x', 4000) + new string('y', 1000);
        var echoed = connection.Command("SELECT $text;", CommandType.Text, 0, factory).ExecuteScalar<string>(text);
        Assert.True(echoed == text, $"echoed {echoed.Length} characters of {text.Length}");
        Assert.Equal("short", connection.Command("SELECT $text;", CommandType.Text, 0, factory).ExecuteScalar<string>("short"));

        Assert.Equal(statements, NativeStatements(connection).Count);
        Assert.Equal((before.Hits + 3, before.Misses + 1), Counts());
    }

    [Fact]
    public void RawStatementsAreResetAndReusedAndFinalizedWithTheirConnection()
    {
        const string sql = "SELECT ?1 + 1;";
        var before = Counts();
        StatementCachingConnection connection;
        using (var lease = _database.Read())
        {
            connection = lease.Connection;
            for (var i = 0; i < 3; i++)
            {
                using var rented = connection.RentRaw(sql);
                raw.sqlite3_bind_int64(rented.Statement, 1, i);
                Assert.Equal(raw.SQLITE_ROW, raw.sqlite3_step(rented.Statement));
                Assert.Equal(i + 1, raw.sqlite3_column_int64(rented.Statement, 0));
            }

            Assert.Equal(1, connection.Statements.Count);
        }

        Assert.Equal((before.Hits + 2, before.Misses + 1), Counts());
        _database.Dispose(); // closes the idle connection: its statements must be finalized first, or SQLite cannot close it
        Assert.Equal(ConnectionState.Closed, connection.State);
        Assert.Equal(0, connection.Statements.Count);
    }

    [Fact]
    public void AConnectionKeepsAtMostItsCapacityOfStatements()
    {
        using var lease = _database.Read();
        for (var i = 0; i < SqliteStatementCache.Capacity * 2; i++)
        {
            using var command = lease.Connection.Rent($"SELECT {i};");
            Assert.Equal((long)i, command.ExecuteScalar());
        }

        Assert.Equal(SqliteStatementCache.Capacity, lease.Connection.Statements.Count);
        Assert.True(NativeStatements(lease.Connection).Count <= SqliteStatementCache.Capacity,
            $"SQLite holds {NativeStatements(lease.Connection).Count} statements");
    }

    [Fact]
    public void AConnectionGivenBackMidStatementIsClosedInsteadOfLentAgain()
    {
        StatementCachingConnection abandoned;
        using (var lease = _database.Read())
        {
            abandoned = lease.Connection;
            var command = abandoned.CreateCommand();
            command.CommandText = "SELECT id FROM orgs UNION ALL SELECT 1 UNION ALL SELECT 2;";
            var reader = command.ExecuteReader();
            Assert.True(reader.Read()); // left open: the statement holds a read snapshot
        }

        Assert.Equal(ConnectionState.Closed, abandoned.State);
        using var next = _database.Read();
        Assert.NotSame(abandoned, next.Connection);
    }

    [Fact]
    public void ReadConnectionsStayReadOnlyWhenLentAgain()
    {
        for (var i = 0; i < 3; i++)
        {
            using var lease = _database.Read();
            using var write = lease.Connection.Rent("INSERT INTO orgs (public_id, name, created_at) VALUES ('o', 'bypass', 1);");
            var refused = Assert.Throws<Microsoft.Data.Sqlite.SqliteException>(() => write.ExecuteNonQuery());
            Assert.True(refused.SqliteErrorCode == 8, $"expected SQLITE_READONLY (8), got {refused.SqliteErrorCode}: {refused.Message}");
        }
    }

    /// <summary>What Dapper.AOT generates for a call site with one string parameter (sized by Dapper's rule).</summary>
    private sealed class EchoFactory : PreparedCommandFactory<string>
    {
        public override void AddParameters(in UnifiedCommand command, string args)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = "text";
            parameter.DbType = DbType.String;
            SetValueWithDefaultSize(parameter, args);
            command.Parameters.Add(parameter);
        }

        public override void UpdateParameters(in UnifiedCommand command, string args) => command.Parameters[0].Value = args;
    }
}
