namespace FastIngest.Ingest;

public static class IngestServiceCollectionExtensions
{
    public static IServiceCollection AddIngest(this IServiceCollection services)
    {
        services.AddSingleton<RunBatchWriter>();
        services.AddSingleton<Storage.IStorageWriter>(static sp => sp.GetRequiredService<RunBatchWriter>());
        services.AddSingleton<UploadSlots>();
        services.AddSingleton<UploadSpool>();
        services.AddSingleton<TestCases.HeavyReadSlots>();
        services.AddSingleton<TestCases.JUnitUpload>();
        services.AddSingleton<IngestEndpoint>();
        services.AddSingleton<Reading.ProjectResolver>();
        services.AddSingleton<Reading.PagingCursors>();
        services.AddSingleton<Reading.RunEndpoints>();
        services.AddSingleton<Reading.StatsEndpoint>();
        services.AddSingleton<TestCases.TestCaseEndpoints>();
        services.AddSingleton<TestAnalytics.TestEndpoints>();
        services.AddSingleton<Quarantine.QuarantineSet>();
        services.AddSingleton<Quarantine.QuarantineEndpoints>();
        services.AddSingleton<Quarantine.AutoQuarantine>();
        services.AddHostedService(static sp => sp.GetRequiredService<Quarantine.AutoQuarantine>());
        return services;
    }
}
