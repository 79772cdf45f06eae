using FastIngest.Configuration;
using FastIngest.Ingest;
using FastIngest.Observability;
using FastIngest.Storage;
using FastIngest.Storage.Postgres;
using FastIngest.Storage.Sqlite;
using FastIngest.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Storage.Contract;

/// <summary>
/// One backend under the storage contract: its stores, and a second "node" on the same data. For PostgreSQL a node
/// is a separate pool on the same database, as a second process would have; SQLite has one process by design, so
/// its second node is the same stores (the contract's concurrency then runs through its one writer).
/// </summary>
public interface IStorageBackend : IAsyncDisposable
{
    ITenantStore Tenants { get; }

    IConfirmTokenStore ConfirmTokens { get; }

    IRunQueries Runs { get; }

    IQuarantineStore Quarantine { get; }

    IDataRemovalStore Removal { get; }

    IStorageStatistics Statistics { get; }

    /// <summary>The node's ingest writer (group commit over the backend's <see cref="IRunBatchStore"/>), as the server runs it.</summary>
    RunBatchWriter Writer { get; }

    Task<IStorageBackend> SecondNodeAsync();

    /// <summary>A test's look at (or change to) the stored rows behind the stores' backs: one integer, or -1 for no row.</summary>
    Task<long> ScalarAsync(string sql);
}

/// <summary>The embedded default: a temp file, the real one-owner writer, stores as the server builds them.</summary>
public sealed class SqliteBackend : IStorageBackend
{
    private readonly string _directory;
    private readonly SqliteDatabase _database;

    private SqliteBackend(string directory, SqliteDatabase database, RunBatchWriter writer, SqliteWrites writes)
    {
        _directory = directory;
        _database = database;
        Writer = writer;
        Tenants = new SqliteTenantStore(database, writes);
        ConfirmTokens = new SqliteConfirmTokenStore(writes);
        Runs = new SqliteRunQueries(database, new SqliteRollupFolder(database, writes, new FastIngest.TestAnalytics.TestStateRules()));
        Quarantine = new SqliteQuarantineStore(database, writes);
        Removal = new SqliteDataRemovalStore(database, writes);
    }

    public IDataRemovalStore Removal { get; }

    public IStorageStatistics Statistics => _database;

    public IRunQueries Runs { get; }

    public IQuarantineStore Quarantine { get; }

    public RunBatchWriter Writer { get; }

    public ITenantStore Tenants { get; }

    public IConfirmTokenStore ConfirmTokens { get; }

    public static IStorageBackend Create()
    {
        var directory = Directory.CreateTempSubdirectory("fastingest-contract-").FullName;
        var database = new SqliteDatabase(Path.Combine(directory, "fastingest.db"), DurabilityMode.Full);
        database.Migrate();
        var store = new SqliteRunBatchStore(database, DurabilityMode.Full);
        var options = new ServerOptions { Listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), DataDirectory = directory };
        var writer = new RunBatchWriter(store, options, new ServerMetrics(), NullLogger<RunBatchWriter>.Instance);
        var writes = new SqliteWrites(writer, store);
        return new SqliteBackend(directory, database, writer, writes);
    }

    public Task<IStorageBackend> SecondNodeAsync() => Task.FromResult<IStorageBackend>(new SameNode(this));

    public Task<long> ScalarAsync(string sql)
    {
        // Its own read-write connection, beside the writer's: tests use it while the writer is idle.
        using var connection = _database.OpenWriter();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Task.FromResult(command.ExecuteScalar() is long value ? value : -1);
    }

    public async ValueTask DisposeAsync()
    {
        await Writer.DisposeAsync();
        _database.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    private sealed class SameNode(SqliteBackend first) : IStorageBackend
    {
        public ITenantStore Tenants => first.Tenants;

        public IConfirmTokenStore ConfirmTokens => first.ConfirmTokens;

        public RunBatchWriter Writer => first.Writer;

        public IRunQueries Runs => first.Runs;

        public IQuarantineStore Quarantine => first.Quarantine;

        public IDataRemovalStore Removal => first.Removal;

        public IStorageStatistics Statistics => first.Statistics;

        public Task<IStorageBackend> SecondNodeAsync() => Task.FromResult<IStorageBackend>(this);

        public Task<long> ScalarAsync(string sql) => first.ScalarAsync(sql);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>A fresh database on the test run's throwaway PostgreSQL server (<see cref="PostgresCluster"/>).</summary>
public sealed class PostgresBackend : IStorageBackend
{
    private readonly string _connectionString;
    private readonly PostgresDatabase _database;

    private PostgresBackend(string connectionString, PostgresDatabase database)
    {
        _connectionString = connectionString;
        _database = database;
        Tenants = new PostgresTenantStore(database);
        ConfirmTokens = new PostgresConfirmTokenStore(database);
        Runs = new PostgresRunQueries(database);
        Quarantine = new PostgresQuarantineStore(database);
        Removal = new PostgresDataRemovalStore(database);
        var options = new ServerOptions { Listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), DataDirectory = Path.GetTempPath() };
        Writer = new RunBatchWriter(new PostgresRunBatchStore(database), options, new ServerMetrics(), NullLogger<RunBatchWriter>.Instance);
    }

    public RunBatchWriter Writer { get; }

    public ITenantStore Tenants { get; }

    public IConfirmTokenStore ConfirmTokens { get; }

    public IRunQueries Runs { get; }

    public IQuarantineStore Quarantine { get; }

    public IDataRemovalStore Removal { get; }

    public IStorageStatistics Statistics => _database;

    public static async Task<IStorageBackend> CreateAsync() => await OpenAsync(await PostgresCluster.CreateDatabaseAsync("contract"));

    public async Task<IStorageBackend> SecondNodeAsync() => await OpenAsync(_connectionString);

    public async Task<long> ScalarAsync(string sql)
    {
        await using var command = _database.DataSource.CreateCommand(sql);
        return await command.ExecuteScalarAsync() is { } value and not DBNull ? Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture) : -1;
    }

    public async ValueTask DisposeAsync()
    {
        await Writer.DisposeAsync();
        await _database.DisposeAsync();
    }

    private static async Task<IStorageBackend> OpenAsync(string connectionString)
    {
        var database = PostgresDatabase.Create(connectionString);
        await database.MigrateAsync(); // a second node finds the schema current and changes nothing
        return new PostgresBackend(connectionString, database);
    }
}
