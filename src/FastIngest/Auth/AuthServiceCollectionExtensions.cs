namespace FastIngest.Auth;

public static class AuthServiceCollectionExtensions
{
    public static IServiceCollection AddTokenAuthentication(this IServiceCollection services)
    {
        services.AddSingleton(static sp => sp.GetRequiredService<FastIngest.Configuration.ServerOptions>().RateLimits);
        services.AddSingleton<FastIngest.RateLimiting.AuthFailureTracker>();
        services.AddSingleton<FastIngest.RateLimiting.CredentialRateLimiter>();
        services.AddSingleton<FastIngest.RateLimiting.DailyQuota>();
        services.AddSingleton<ISecretHasher, SecretHasher>();
        services.AddSingleton<TokenCache>();
        services.AddSingleton<HashSlots>();
        services.AddSingleton(static sp => new TokenIssuer(sp.GetRequiredService<FastIngest.Storage.ITenantStore>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ISecretHasher>(), sp.GetRequiredService<HashSlots>()));
        services.AddSingleton<Authenticator>();
        services.AddSingleton<RequestAuthentication>();
        services.AddSingleton<TokenUsageFlusher>();
        services.AddHostedService(static sp => sp.GetRequiredService<TokenUsageFlusher>());
        return services;
    }
}
