using FastIngest.Ingest;
using FastIngest.Management;
using FastIngest.Observability;
using FastIngest.Reading;
using FastIngest.TestCases;

namespace FastIngest.Http;

public static class ApiRoutes
{
    /// <summary>
    /// Every route, versioned under <c>/v1</c>; the seed's unversioned paths stay as aliases so its QUICKSTART
    /// works as written. Handlers are plain <see cref="RequestDelegate"/>s: nothing to generate or reflect.
    /// </summary>
    public static WebApplication MapApi(this WebApplication app)
    {
        var services = app.Services;
        var ingest = services.GetRequiredService<IngestEndpoint>();
        var runs = services.GetRequiredService<RunEndpoints>();
        var stats = services.GetRequiredService<StatsEndpoint>();
        var tests = services.GetRequiredService<TestCaseEndpoints>();
        var analytics = services.GetRequiredService<TestAnalytics.TestEndpoints>();
        var destructive = services.GetRequiredService<Destructive.DestructiveEndpoints>();
        var orgs = services.GetRequiredService<OrgEndpoints>();
        var projects = services.GetRequiredService<ProjectEndpoints>();
        var tokens = services.GetRequiredService<TokenEndpoints>();
        var metrics = services.GetRequiredService<MetricsEndpoint>();
        var quarantine = services.GetRequiredService<Quarantine.QuarantineEndpoints>();

        // Which address serves what (with --metrics-listen) is decided by ListenerSeparation, by local port.
        var api = app.MapGroup("");

        app.MapGet("/healthz", HealthEndpoints.Live);
        app.MapGet("/readyz", HealthEndpoints.Ready);
        app.MapGet("/metrics", metrics.HandleAsync);
        var contract = services.GetRequiredService<ApiContract>();
        app.MapGet("/v1/openapi.json", context =>
        {
            context.Response.ContentType = "application/json";
            context.Response.Headers.CacheControl = "public, max-age=300";
            context.Response.ContentLength = contract.Document.Length;
            return context.Response.Body.WriteAsync(contract.Document).AsTask();
        });

        foreach (var prefix in new[] { "/v1", "" })
        {
            api.MapPost(prefix + "/ingest", ingest.HandleAsync);
            api.MapPost(prefix + "/orgs", orgs.CreateAsync);
            api.MapPost(prefix + "/projects", projects.CreateAsync);
            api.MapPost(prefix + "/tokens", tokens.CreateAsync);
            api.MapGet(prefix + "/projects/{id}/tokens", tokens.ListAsync);
            api.MapDelete(prefix + "/tokens/{id}", tokens.RevokeAsync);
            api.MapGet(prefix + "/runs", runs.ListAsync);
            api.MapGet(prefix + "/runs/{**run_id}", context =>
                TestCaseEndpoints.IsTestListPath(context) ? tests.ListForRunAsync(context) : runs.GetAsync(context));
            api.MapGet(prefix + "/tests", analytics.ListAsync);
            api.MapGet(prefix + "/tests/flaky", analytics.FlakyAsync);
            api.MapGet(prefix + "/tests/slowest", analytics.SlowestAsync);
            api.MapGet(prefix + "/tests/{test_id}", analytics.GetAsync);
            api.MapGet(prefix + "/tests/{test_id}/executions", analytics.ExecutionsAsync);
            api.MapPost(prefix + "/tests/{test_id}/reset-flaky", analytics.ResetFlakyAsync);
            api.MapGet(prefix + "/failures", analytics.FailuresAsync);
            api.MapGet(prefix + "/stats", stats.GetAsync);
            api.MapDelete(prefix + "/projects/{id}", destructive.DeleteProjectAsync);
            api.MapPatch(prefix + "/projects/{id}", destructive.SetRetentionAsync);
            api.MapDelete(prefix + "/orgs/{id}", destructive.DeleteOrgAsync);
            api.MapPost(prefix + "/projects/{id}/tokens/revoke-all", destructive.RevokeAllTokensAsync);
            api.MapPost(prefix + "/projects/{id}/purge", destructive.PurgeAsync);
            api.MapGet(prefix + "/projects/{id}/quarantine", quarantine.ListAsync);
            api.MapPost(prefix + "/projects/{id}/quarantine", quarantine.PutAsync);
            api.MapDelete(prefix + "/projects/{id}/quarantine/{entry}", quarantine.RemoveAsync);
            api.MapPut(prefix + "/projects/{id}/quarantine/policy", quarantine.PolicyAsync);
            api.MapPost(prefix + "/admin/backup", destructive.BackupAsync);
            api.MapGet(prefix + "/jobs/{id}", destructive.GetJobAsync);
        }

        return app;
    }
}
