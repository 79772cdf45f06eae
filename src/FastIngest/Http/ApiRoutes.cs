using FastIngest.Ingest;
using FastIngest.Management;
using FastIngest.Observability;
using FastIngest.Reading;

namespace FastIngest.Http;

public static class ApiRoutes
{
    /// <summary>
    /// Every route, versioned under <c>/v1</c>; the seed's unversioned paths stay as aliases so its QUICKSTART
    /// works as written. Handlers are plain <see cref="RequestDelegate"/>s: nothing to generate or reflect.
    /// </summary>
    public static WebApplication MapApi(this WebApplication app, string? metricsHost)
    {
        var services = app.Services;
        var ingest = services.GetRequiredService<IngestEndpoint>();
        var runs = services.GetRequiredService<RunEndpoints>();
        var stats = services.GetRequiredService<StatsEndpoint>();
        var destructive = services.GetRequiredService<Destructive.DestructiveEndpoints>();
        var orgs = services.GetRequiredService<OrgEndpoints>();
        var projects = services.GetRequiredService<ProjectEndpoints>();
        var tokens = services.GetRequiredService<TokenEndpoints>();
        var metrics = services.GetRequiredService<MetricsEndpoint>();

        app.MapGet("/healthz", HealthEndpoints.Live);
        app.MapGet("/readyz", HealthEndpoints.Ready);
        var metricsRoute = app.MapGet("/metrics", metrics.HandleAsync);
        if (metricsHost is not null)
        {
            metricsRoute.RequireHost(metricsHost);
        }

        foreach (var prefix in new[] { "/v1", "" })
        {
            app.MapPost(prefix + "/ingest", ingest.HandleAsync);
            app.MapPost(prefix + "/orgs", orgs.CreateAsync);
            app.MapPost(prefix + "/projects", projects.CreateAsync);
            app.MapPost(prefix + "/tokens", tokens.CreateAsync);
            app.MapGet(prefix + "/projects/{id}/tokens", tokens.ListAsync);
            app.MapDelete(prefix + "/tokens/{id}", tokens.RevokeAsync);
            app.MapGet(prefix + "/runs", runs.ListAsync);
            app.MapGet(prefix + "/runs/{**run_id}", runs.GetAsync);
            app.MapGet(prefix + "/stats", stats.GetAsync);
            app.MapDelete(prefix + "/projects/{id}", destructive.DeleteProjectAsync);
            app.MapDelete(prefix + "/orgs/{id}", destructive.DeleteOrgAsync);
            app.MapPost(prefix + "/projects/{id}/tokens/revoke-all", destructive.RevokeAllTokensAsync);
            app.MapPost(prefix + "/projects/{id}/purge", destructive.PurgeAsync);
            app.MapPost(prefix + "/admin/backup", destructive.BackupAsync);
        }

        return app;
    }
}
