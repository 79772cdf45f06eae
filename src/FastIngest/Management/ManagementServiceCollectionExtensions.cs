namespace FastIngest.Management;

public static class ManagementServiceCollectionExtensions
{
    public static IServiceCollection AddManagement(this IServiceCollection services)
    {
        services.AddSingleton<ManagedObjectAccess>();
        services.AddSingleton<OrgEndpoints>();
        services.AddSingleton<ProjectEndpoints>();
        services.AddSingleton<TokenEndpoints>();
        services.AddSingleton<Destructive.ConfirmTokens>();
        services.AddSingleton<Destructive.RunPurger>();
        services.AddSingleton<Destructive.DestructiveJobs>();
        services.AddHostedService(static sp => sp.GetRequiredService<Destructive.DestructiveJobs>());
        services.AddSingleton<Destructive.RetentionJob>();
        services.AddHostedService(static sp => sp.GetRequiredService<Destructive.RetentionJob>());
        services.AddSingleton<Destructive.DestructiveEndpoints>();
        return services;
    }
}
