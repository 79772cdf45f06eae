namespace FastIngest.Ingest;

public static class IngestServiceCollectionExtensions
{
    public static IServiceCollection AddIngest(this IServiceCollection services)
    {
        services.AddSingleton<RunBatchWriter>();
        services.AddSingleton<IngestEndpoint>();
        services.AddSingleton<RunEndpoints>();
        return services;
    }
}
