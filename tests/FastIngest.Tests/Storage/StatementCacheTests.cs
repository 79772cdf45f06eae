using System.Data;
using Dapper;
using Microsoft.Data.Sqlite;
using FastIngest.Configuration;
using FastIngest.Storage.Sqlite;
using FastIngest.Tests.Infrastructure;
using SQLitePCL;

namespace FastIngest.Tests.Storage;

/// <summary>
/// Prepared statements live as long as the connection that prepared them: read connections are lent and given back
/// with their statements, and a query run again on the same connection reuses its statement (a hit) instead of
/// compiling its text again (a miss).
/// </summary>
public sealed class StatementCacheTests : IDisposable
{
    private readonly TempSqliteDatabase _temp = new("statements");
    private readonly SqliteDatabase _database;

    public StatementCacheTests() => _database = _temp.Database;

    public void Dispose() => _temp.Dispose();

    /// <summary>
    /// Lets <see cref="NativeStatements"/> list what the connection prepares from now on (SQLitePCLRaw tracks
    /// statements only when asked; a freshly lent connection has none yet).
    /// </summary>
    private static StatementCachingConnection Tracked(StatementCachingConnection connection)
    {
        connection.Handle!.enable_sqlite3_next_stmt(true);
        return connection;
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
            first = Tracked(lease.Connection);
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
    public async Task AStoreReadAndAManagementWriteRunAgainAreAllHits()
    {
        using var writer = new SqliteRunBatchStore(_database, DurabilityMode.Normal);
        var tenants = new SqliteTenantStore(_database, new SqliteWrites(new InlineStorageWriter(writer), writer));
        var first = (await tenants.CreateOrgAsync("first", 1)).Org!;
        Assert.Equal("first", (await tenants.FindOrgAsync(first.Id))!.Name);

        // The same calls again, on the connections that ran them: nothing is compiled again.
        var before = Counts();
        var second = (await tenants.CreateOrgAsync("second", 2)).Org!;
        Assert.Equal("second", (await tenants.FindOrgAsync(second.Id))!.Name);
        var (hits, misses) = Counts();
        Assert.True(misses == before.Misses && hits > before.Hits, $"hits {before.Hits} -> {hits}, misses {before.Misses} -> {misses}");
    }

    [Fact]
    public void DapperQueriesReuseTheirCommandWithTheNewValues()
    {
        var factory = new EchoFactory();
        var before = Counts();
        using var lease = _database.Read();
        var connection = Tracked(lease.Connection);
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
        sqlite3 handle;
        using (var lease = _database.Read())
        {
            connection = Tracked(lease.Connection);
            handle = connection.Handle!;
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
        Assert.Null(raw.sqlite3_next_stmt(handle, null)); // the native connection, pooled again, holds no statement
    }

    [Fact]
    public void ARawStatementLeftMidStepIsResetAndItsConnectionClosedForGood()
    {
        StatementCachingConnection abandoned;
        sqlite3_stmt statement;
        using (var lease = _database.Read())
        {
            abandoned = lease.Connection;
            var rented = abandoned.RentRaw("SELECT name FROM sqlite_master;"); // never disposed: a caller's bug
            statement = rented.Statement;
            Assert.Equal(raw.SQLITE_ROW, raw.sqlite3_step(statement));
            Assert.NotEqual(0, raw.sqlite3_stmt_busy(statement)); // its read is open
        }

        Assert.Equal(ConnectionState.Closed, abandoned.State);
        Assert.Equal(0, raw.sqlite3_stmt_busy(statement)); // reset as the connection closed: no snapshot is held
        using var next = _database.Read();
        Assert.NotSame(abandoned, next.Connection);
        using var command = next.Connection.Rent("SELECT 3;");
        Assert.Equal(3L, command.ExecuteScalar());
    }

    [Fact]
    public void AConnectionKeepsAtMostItsCapacityOfStatementsDroppingTheLeastRecentlyUsed()
    {
        const string hot = "SELECT 'hot';";
        using var lease = _database.Read();
        var connection = Tracked(lease.Connection);
        for (var i = 0; i < SqliteStatementCache.Capacity * 2; i++)
        {
            using (var command = connection.Rent($"SELECT {i};"))
            {
                Assert.Equal((long)i, command.ExecuteScalar());
            }

            using var again = connection.Rent(hot); // used all along: never the least recently used
            Assert.Equal("hot", again.ExecuteScalar());
        }

        Assert.Equal(SqliteStatementCache.Capacity, connection.Statements.Count);
        Assert.Equal(SqliteStatementCache.Capacity, NativeStatements(connection).Count); // the dropped ones are finalized
        var before = Counts();
        using (var command = connection.Rent(hot))
        {
            Assert.Equal("hot", command.ExecuteScalar());
        }

        using (var command = connection.Rent("SELECT 0;")) // long unused: dropped
        {
            Assert.Equal(0L, command.ExecuteScalar());
        }

        Assert.Equal((before.Hits + 1, before.Misses + 1), Counts());
    }

    [Fact]
    public void TheSameTextRentedTwiceAtOnceGetsTwoCommandsAndKeepsOne()
    {
        const string sql = "SELECT $n;";
        using var lease = _database.Read();
        var connection = lease.Connection;
        SqliteCommand outerCommand;
        using (var outer = connection.Rent(sql))
        {
            outerCommand = outer.Command;
            outer.Parameters.AddWithValue("$n", 1);
            using var reader = outer.ExecuteReader();
            Assert.True(reader.Read());
            using (var inner = connection.Rent(sql)) // while the outer reader is open
            {
                Assert.NotSame(outerCommand, inner.Command);
                inner.Parameters.AddWithValue("$n", 2);
                Assert.Equal(2L, inner.ExecuteScalar());
            }

            Assert.Equal(1L, reader.GetInt64(0));
        }

        Assert.Equal(1, connection.Statements.Count); // one copy kept, the other disposed
        using var next = connection.Rent(sql);
        next.Parameters.AddWithValue("$n", 3);
        Assert.Equal(3L, next.ExecuteScalar());
    }

    [Fact]
    public void ACommandGivenBackWithItsReaderOpenIsNotReused()
    {
        const string sql = "SELECT 1 UNION ALL SELECT 2;";
        using var lease = _database.Read();
        var connection = lease.Connection;
        SqliteCommand leaked;
        SqliteDataReader open;
        using (var command = connection.Rent(sql))
        {
            leaked = command.Command;
            open = command.ExecuteReader(); // the command is given back before its reader is done with
            Assert.True(open.Read());
        }

        open.Dispose();
        using var next = connection.Rent(sql);
        Assert.NotSame(leaked, next.Command);
        Assert.Equal(1L, next.ExecuteScalar());
    }

    [Fact]
    public void AWriterCommandRentedInsideATransactionIsReusedOutsideOne()
    {
        const string sql = "INSERT INTO orgs (public_id, name, created_at) VALUES ($id, $id, 1);";
        using var writer = _database.OpenWriter();
        using (var transaction = writer.BeginTransaction())
        {
            using (var insert = writer.Rent(sql))
            {
                insert.Parameters.AddWithValue("$id", "in-transaction");
                Assert.Equal(1, insert.ExecuteNonQuery());
            }

            transaction.Commit();
        }

        var before = Counts();
        using (var insert = writer.Rent(sql))
        {
            insert.Parameters.AddWithValue("$id", "outside");
            Assert.Equal(1, insert.ExecuteNonQuery());
        }

        Assert.Equal((before.Hits + 1, before.Misses), Counts());
        using var count = writer.Rent("SELECT count(*) FROM orgs;");
        Assert.Equal(2L, count.ExecuteScalar());
    }

    [Fact]
    public void AReadThatFailsMidwayLeavesItsStatementReusable()
    {
        const string sql = "SELECT 1 UNION ALL SELECT 2;";
        using var lease = _database.Read();
        var connection = lease.Connection;
        Assert.Throws<InvalidOperationException>(void () =>
        {
            using var command = connection.Rent(sql);
            using var reader = command.ExecuteReader();
            reader.Read();
            throw new InvalidOperationException("a caller's bug mid-read");
        });

        var before = Counts();
        using var again = connection.Rent(sql);
        Assert.Equal(1L, again.ExecuteScalar());
        Assert.Equal((before.Hits + 1, before.Misses), Counts());
    }

    [Fact]
    public void ALeaseGivenBackAfterTheDatabaseIsDisposedIsClosed()
    {
        var lease = _database.Read();
        _database.Dispose();
        lease.Dispose();
        Assert.Equal(ConnectionState.Closed, lease.Connection.State);
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
    public void ReadConnectionsStayReadOnlyWhenLentAgainAndWhenTheirPragmasAreAppliedAgain()
    {
        StatementCachingConnection? first = null;
        for (var i = 0; i < 4; i++)
        {
            // From the third lend on, a changed page cap makes the pool configure the warm connection again.
            _database.MaxPageCount = i >= 2 ? 100_000 + i : null;
            using var lease = _database.Read();
            first ??= lease.Connection;
            Assert.Same(first, lease.Connection);
            using var write = lease.Connection.Rent("INSERT INTO orgs (public_id, name, created_at) VALUES ('o', 'bypass', 1);");
            var refused = Assert.Throws<SqliteException>(() => write.ExecuteNonQuery());
            Assert.True(refused.SqliteErrorCode == 8, $"lend {i}: expected SQLITE_READONLY (8), got {refused.SqliteErrorCode}: {refused.Message}");
        }

        _database.MaxPageCount = null;
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
