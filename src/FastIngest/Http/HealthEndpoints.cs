using FastIngest.Ingest;
using FastIngest.Storage;

namespace FastIngest.Http;

/// <summary>
/// <c>/healthz</c>: the process answers. <c>/readyz</c>: the last ingest batch committed and the database accepts a
/// write right now; a load balancer stops sending ingest traffic while it is 503.
/// </summary>
public static class HealthEndpoints
{
    private static readonly byte[] s_ok = "ok\n"u8.ToArray();

    /// <summary>Probes come every few seconds from a load balancer: never wait longer than one would.</summary>
    private static readonly TimeSpan s_probeTimeout = TimeSpan.FromSeconds(2);

    public static Task Live(HttpContext context) => WriteTextAsync(context, StatusCodes.Status200OK, s_ok);

    public static async Task Ready(HttpContext context)
    {
        var store = context.RequestServices.GetRequiredService<ITenantStore>();
        var writer = context.RequestServices.GetRequiredService<RunBatchWriter>();
        await (writer.IsHealthy && await store.IsWritableAsync(s_probeTimeout)
            ? WriteTextAsync(context, StatusCodes.Status200OK, s_ok)
            : Problems.Unavailable(context, "not-ready", "The database does not accept writes (see the batch_commit_failed log events).", 5));
    }

    private static Task WriteTextAsync(HttpContext context, int status, byte[] text)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "text/plain; charset=utf-8";
        response.ContentLength = text.Length;
        return response.Body.WriteAsync(text, 0, text.Length);
    }
}
