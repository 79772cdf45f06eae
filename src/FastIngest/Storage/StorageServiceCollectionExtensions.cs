using FastIngest.Configuration;
using FastIngest.Storage.Sqlite;

namespace FastIngest.Storage;

public static class StorageServiceCollectionExtensions
{
    /// <summary>The embedded SQLite backend. Everything above storage sees only the interfaces.</summary>
    public static IServiceCollection AddSqliteStorage(this IServiceCollection services, ServerOptions options)
    {
        var database = new SqliteDatabase(options.DatabasePath, options.Durability);
        database.Migrate();
        services.AddSingleton(database);
        services.AddSingleton<IStorageStatistics>(database);
        services.AddSingleton(static sp => new SqliteRunBatchStore(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<ServerOptions>().Durability));
        services.AddSingleton<IRunBatchStore>(static sp => sp.GetRequiredService<SqliteRunBatchStore>());
        // Every other write is queued to the ingest writer's thread (IStorageWriter), which owns the one write connection.
        services.AddSingleton(static sp => new SqliteWrites(sp.GetRequiredService<IStorageWriter>(), sp.GetRequiredService<SqliteRunBatchStore>()));
        services.AddSingleton(static sp => new StorageTimer(sp.GetRequiredService<Observability.ServerMetrics>(), sp.GetRequiredService<ILoggerFactory>(),
            sp.GetRequiredService<ServerOptions>().SlowStorageCall));
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
        services.AddHostedService<SqliteCheckpointer>();
        return services;
    }
}
