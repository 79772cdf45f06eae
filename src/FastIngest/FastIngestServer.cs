using FastIngest.Dashboard;
using System.Net;
using FastIngest.Auth;
using FastIngest.Configuration;
using FastIngest.Http;
using FastIngest.Ingest;
using FastIngest.Management;
using FastIngest.Observability;
using FastIngest.Storage;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace FastIngest;

/// <summary>Builds the whole server from <see cref="ServerOptions"/>; Program and the tests both use it.</summary>
public static class FastIngestServer
{
    // replaceServices is for tests: it swaps registrations (a hasher that blocks on a signal) after the defaults.
    public static WebApplication Build(ServerOptions options, TextWriter console, Action<ILoggingBuilder>? configureLogging = null,
        Action<IServiceCollection>? replaceServices = null)
    {
        // Configuration comes from flags and FASTINGEST_* only. Without this the host watches the content root
        // for appsettings changes, and every WAL write under ./data wakes that watcher (measured: 7% of CPU).
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.AddJsonLines(options.LogLevel);
        configureLogging?.Invoke(builder.Logging);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            KestrelLimits.Apply(kestrel);
            kestrel.Listen(options.Listen);
            if (options.MetricsListen is { } metrics)
            {
                kestrel.Listen(metrics);
            }
        });
        builder.Services.Configure<HostOptions>(static host => host.ShutdownTimeout = TimeSpan.FromSeconds(30));

        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(static _ => ApiContract.Load());
        if (options.ValidateResponses)
        {
            builder.Services.AddSingleton<ResponseContractChecker>();
            builder.Services.AddHostedService(static sp => sp.GetRequiredService<ResponseContractChecker>());
        }

        builder.Services.AddObservability();
        if (options.Postgres is null)
        {
            builder.Services.AddSqliteStorage(options);
        }
        else
        {
            builder.Services.AddPostgresStorage(options);
        }

        builder.Services.AddTokenAuthentication();
        builder.Services.AddIngest();
        builder.Services.AddManagement();
        Dashboard.DashboardRoutes.AddDashboard(builder.Services);
        replaceServices?.Invoke(builder.Services);

        var app = builder.Build();
        // Before the server takes any request, so waiting here holds no request thread; the writes it may make
        // run on the writer's own thread.
        AdminTokenBootstrap.EnsureAsync(options, app.Services.GetRequiredService<ITenantStore>(),
            app.Services.GetRequiredService<TokenIssuer>(), app.Services.GetRequiredService<IStartupLock>(), console).GetAwaiter().GetResult();
        _ = app.Services.GetRequiredService<Reading.PagingCursors>(); // reads its key now, not under the first request

        if (options.TrustedProxies.Count > 0)
        {
            // The client's address for logs and backoff, and its scheme: a dashboard behind a TLS proxy sets its
            // session cookie Secure.
            var forwarded = new ForwardedHeadersOptions
            {
                ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto,
                ForwardLimit = null,
            };
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            foreach (var network in options.TrustedProxies)
            {
                forwarded.KnownIPNetworks.Add(network);
            }

            app.UseForwardedHeaders(forwarded); // first: everything after sees the client, not the proxy
        }

        if (options.ValidateResponses)
        {
            app.UseMiddleware<ResponseValidation>(); // outermost: it sees every answer, the 500s written below it included
        }

        app.UseMiddleware<RequestTelemetryMiddleware>();
        app.UseRequestIds();

        app.UseStatusCodePages(static pages => Problems.ForBareStatus(pages.HttpContext));
        // With port 0 (some tests) the bound ports are unknown here, and both addresses serve everything.
        if (options.MetricsListen is { Port: > 0 } metricsListen && options.Listen.Port > 0)
        {
            app.UseListenerSeparation(options.Listen.Port, metricsListen.Port);
        }

        app.MapApi();
        app.MapDashboard();
        return app;
    }

    /// <summary>The address Kestrel actually bound (useful with port 0).</summary>
    public static Uri BoundAddress(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        return new Uri(addresses.First().Replace("[::]", IPAddress.Loopback.ToString(), StringComparison.Ordinal));
    }
}
