using FastIngest.Configuration;
using FastIngest.Storage.Postgres;
using FastIngest.Storage.Sqlite;

namespace FastIngest.Storage;

public static class StorageServiceCollectionExtensions
{
    /// <summary>The embedded SQLite backend. Everything above storage sees only the interfaces.</summary>
    public static IServiceCollection AddSqliteStorage(this IServiceCollection services, ServerOptions options)
    {
        var database = new SqliteDatabase(options.DatabasePath, options.Durability);
        database.Migrate();
        services.AddSingleton(_ => database); // created by a factory, so the container closes its pooled connections
        services.AddSingleton<IStorageStatistics>(static sp => sp.GetRequiredService<SqliteDatabase>());
        services.AddSingleton(static sp => new SqliteRunBatchStore(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<ServerOptions>().Durability));
        services.AddSingleton<IRunBatchStore>(static sp => sp.GetRequiredService<SqliteRunBatchStore>());
        // Every other write is queued to the ingest writer's thread (IStorageWriter), which owns the one write connection.
        services.AddSingleton(static sp => new SqliteWrites(sp.GetRequiredService<IStorageWriter>(), sp.GetRequiredService<SqliteRunBatchStore>()));
        AddStorageTimer(services);
        services.AddSingleton<ITenantStore>(static sp => new TimedTenantStore(
            new SqliteTenantStore(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<SqliteWrites>()), sp.GetRequiredService<StorageTimer>()));
        services.AddSingleton(static sp => new SqliteRollupFolder(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<SqliteWrites>(),
            sp.GetRequiredService<ServerOptions>().TestStates));
        services.AddSingleton<IRunQueries>(static sp => new TimedRunQueries(
            new SqliteRunQueries(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<SqliteRollupFolder>()), sp.GetRequiredService<StorageTimer>()));
        services.AddSingleton<ITestQueries>(static sp => new TimedTestQueries(
            new SqliteTestQueries(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<SqliteRollupFolder>(), sp.GetRequiredService<SqliteWrites>()),
            sp.GetRequiredService<StorageTimer>()));
        services.AddSingleton<IQuarantineStore>(static sp => new TimedQuarantineStore(
            new SqliteQuarantineStore(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<SqliteWrites>()), sp.GetRequiredService<StorageTimer>()));
        services.AddSingleton<IConfirmTokenStore>(static sp => new TimedConfirmTokenStore(
            new SqliteConfirmTokenStore(sp.GetRequiredService<SqliteWrites>()), sp.GetRequiredService<StorageTimer>()));
        services.AddSingleton<IDataRemovalStore>(static sp => new TimedDataRemovalStore(
            new SqliteDataRemovalStore(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<SqliteWrites>()), sp.GetRequiredService<StorageTimer>()));
        services.AddSingleton<IStartupLock, ProcessStartupLock>();
        services.AddHostedService<SqliteCheckpointer>();
        return services;
    }

    /// <summary>
    /// PostgreSQL (<c>--postgres</c>): any number of nodes on one database. Reaching the server and migrating happen
    /// here, before anything listens, so bad configuration stops the start with one clear message.
    /// </summary>
    public static IServiceCollection AddPostgresStorage(this IServiceCollection services, ServerOptions options)
    {
        var database = PostgresDatabase.Create(options.Postgres!);
        try
        {
            database.MigrateAsync().GetAwaiter().GetResult();
        }
        catch
        {
            database.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }

        // Through a factory, so the container owns it: stopping the server closes its pooled connections (an
        // instance registered as such would be left open, its connections counted against max_connections).
        services.AddSingleton(_ => database);
        services.AddSingleton<IStorageStatistics>(static sp => sp.GetRequiredService<PostgresDatabase>());
        services.AddSingleton<IRunBatchStore>(static sp => new PostgresRunBatchStore(sp.GetRequiredService<PostgresDatabase>()));
        AddStorageTimer(services);
        services.AddSingleton<ITenantStore>(static sp => new TimedTenantStore(
            new PostgresTenantStore(sp.GetRequiredService<PostgresDatabase>()), sp.GetRequiredService<StorageTimer>()));
        services.AddSingleton<IRunQueries>(static sp => new TimedRunQueries(
            new PostgresRunQueries(sp.GetRequiredService<PostgresDatabase>()), sp.GetRequiredService<StorageTimer>()));
        services.AddSingleton(static sp => new PostgresTestRollups(sp.GetRequiredService<PostgresDatabase>(), sp.GetRequiredService<ServerOptions>().TestStates,
            sp.GetRequiredService<ILogger<PostgresTestRollups>>()));
        services.AddSingleton<ITestQueries>(static sp => new TimedTestQueries(
            new PostgresTestQueries(sp.GetRequiredService<PostgresDatabase>(), sp.GetRequiredService<PostgresTestRollups>()), sp.GetRequiredService<StorageTimer>()));
        services.AddSingleton<IQuarantineStore>(static sp => new TimedQuarantineStore(
            new PostgresQuarantineStore(sp.GetRequiredService<PostgresDatabase>()), sp.GetRequiredService<StorageTimer>()));
        services.AddSingleton<IConfirmTokenStore>(static sp => new TimedConfirmTokenStore(
            new PostgresConfirmTokenStore(sp.GetRequiredService<PostgresDatabase>()), sp.GetRequiredService<StorageTimer>()));
        services.AddSingleton<IDataRemovalStore>(static sp => new TimedDataRemovalStore(
            new PostgresDataRemovalStore(sp.GetRequiredService<PostgresDatabase>()), sp.GetRequiredService<StorageTimer>()));
        services.AddSingleton<IRetirementFeed>(static sp => new PostgresRetirementFeed(sp.GetRequiredService<PostgresDatabase>()));
        services.AddSingleton<IStartupLock>(static sp => new PostgresStartupLock(sp.GetRequiredService<PostgresDatabase>()));
        services.AddHostedService<PostgresBackgroundWork>();
        return services;
    }

    /// <summary>Times every storage call by name, on either backend (the Timed* decorators report to it).</summary>
    private static void AddStorageTimer(IServiceCollection services) =>
        services.AddSingleton(static sp => new StorageTimer(sp.GetRequiredService<Observability.ServerMetrics>(), sp.GetRequiredService<ILoggerFactory>(),
            sp.GetRequiredService<ServerOptions>().SlowStorageCall));
}
