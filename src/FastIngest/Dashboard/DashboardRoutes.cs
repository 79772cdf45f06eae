namespace FastIngest.Dashboard;

public static class DashboardRoutes
{
    /// <summary>The dashboard lives under <c>/ui</c>, beside the API on the same listener; <c>GET /</c> leads there.</summary>
    public static WebApplication MapDashboard(this WebApplication app)
    {
        var pages = app.Services.GetRequiredService<DashboardPages>();
        var assets = app.Services.GetRequiredService<Assets>();
        app.MapGet("/", static context =>
        {
            context.Response.StatusCode = StatusCodes.Status303SeeOther;
            context.Response.Headers.Location = "/ui";
            return Task.CompletedTask;
        });
        app.MapGet("/ui", pages.HomeAsync);
        app.MapPost("/ui/sign-in", pages.SignInAsync);
        app.MapPost("/ui/sign-out", pages.SignOutAsync);
        app.MapGet("/ui/assets/{file}", assets.ServeCssAsync);
        app.MapGet("/ui/api", pages.ApiReferenceAsync);
        app.MapGet("/ui/projects/{project}", pages.OverviewAsync);
        app.MapGet("/ui/projects/{project}/runs", pages.RunsAsync);
        app.MapGet("/ui/projects/{project}/runs/{**run_id}", pages.RunAsync);
        app.MapGet("/ui/projects/{project}/tests", pages.TestsAsync);
        app.MapGet("/ui/projects/{project}/tests/{test_id}", pages.TestAsync);
        app.MapGet("/ui/projects/{project}/failures", pages.FailuresAsync);
        return app;
    }

    public static IServiceCollection AddDashboard(this IServiceCollection services)
    {
        services.AddSingleton<DashboardSessions>();
        services.AddSingleton<Assets>();
        services.AddSingleton<DashboardPages>();
        return services;
    }
}
