using FastIngest.Storage;

namespace FastIngest.Http;

/// <summary><c>/healthz</c>: the process answers. <c>/readyz</c>: the database accepts a write right now.</summary>
public static class HealthEndpoints
{
    private static readonly byte[] s_ok = "ok\n"u8.ToArray();

    public static Task Live(HttpContext context) => WriteTextAsync(context, StatusCodes.Status200OK, s_ok);

    public static Task Ready(HttpContext context)
    {
        var store = context.RequestServices.GetRequiredService<ITenantStore>();
        return store.IsWritable()
            ? WriteTextAsync(context, StatusCodes.Status200OK, s_ok)
            : Problems.Unavailable(context, "not-ready", "The database does not accept writes.", 5);
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
