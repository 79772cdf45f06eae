using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging.Console;

namespace FastIngest.Observability;

public static class ObservabilityExtensions
{
    public static IServiceCollection AddObservability(this IServiceCollection services)
    {
        services.AddSingleton<ServerMetrics>();
        services.AddSingleton<MetricsEndpoint>();
        services.AddSingleton<AccessLogSummary>();
        services.AddHostedService(static sp => sp.GetRequiredService<AccessLogSummary>());
        return services;
    }

    /// <summary>JSON lines on stdout at the configured level; framework chatter only from Warning up.</summary>
    public static ILoggingBuilder AddJsonLines(this ILoggingBuilder logging, LogLevel level)
    {
        logging.ClearProviders();
        logging.SetMinimumLevel(level);
        logging.AddFilter("Microsoft", LogLevel.Warning);
        logging.AddFilter("System", LogLevel.Warning);
        logging.AddConsole(static options => options.FormatterName = JsonLineFormatter.FormatterName);
        // Registered directly: AddConsoleFormatter<,> binds options by reflection, which AOT cannot keep.
        logging.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ConsoleFormatter, JsonLineFormatter>());
        return logging;
    }
}
