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
        services.AddSingleton<ITenantStore>(static sp => new SqliteTenantStore(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<SqliteWrites>()));
        services.AddSingleton(static sp => new SqliteRollupFolder(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<SqliteWrites>(),
            sp.GetRequiredService<ServerOptions>().TestStates));
        services.AddSingleton<IRunQueries>(static sp => new SqliteRunQueries(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<SqliteRollupFolder>()));
        services.AddSingleton<ITestQueries>(static sp => new SqliteTestQueries(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<SqliteRollupFolder>(),
            sp.GetRequiredService<SqliteWrites>()));
        services.AddSingleton<IQuarantineStore>(static sp => new SqliteQuarantineStore(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<SqliteWrites>()));
        services.AddSingleton<IConfirmTokenStore>(static sp => new SqliteConfirmTokenStore(sp.GetRequiredService<SqliteWrites>()));
        services.AddSingleton<IDataRemovalStore>(static sp => new SqliteDataRemovalStore(sp.GetRequiredService<SqliteDatabase>(), sp.GetRequiredService<SqliteWrites>()));
        services.AddHostedService<SqliteCheckpointer>();
        return services;
    }
}
