namespace FastIngest.Http;

/// <summary>
/// Correlation ids: a sane incoming <c>X-Request-Id</c> (at most 64 of <c>[A-Za-z0-9._-]</c>) is kept, anything
/// else is replaced by a generated one. It becomes <see cref="HttpContext.TraceIdentifier"/>, is echoed on
/// every response, and appears in every log line and problem body of the request.
/// <para>
/// W3C trace context: the hosting layer continues a valid incoming <c>traceparent</c> (and <c>tracestate</c>) in
/// the request's activity, or starts a new trace; its trace id and this server's span id are in every log line of
/// the request (<c>trace_id</c>, <c>span_id</c>), and the response's <c>traceparent</c> names this server's span,
/// so a caller or proxy can link its own span to ours.
/// </para>
/// </summary>
public static class RequestIdMiddleware
{
    public const string HeaderName = "X-Request-Id";

    public const string TraceParentHeader = "traceparent";

    public static IApplicationBuilder UseRequestIds(this IApplicationBuilder app) => app.Use(static (context, next) =>
    {
        var incoming = context.Request.Headers[HeaderName];
        if (incoming.Count == 1 && IsSane(incoming[0]))
        {
            context.TraceIdentifier = incoming[0]!;
        }

        // Kestrel's TraceIdentifier is already unique per request (connection id + request number).
        context.Response.Headers[HeaderName] = context.TraceIdentifier;
        if (System.Diagnostics.Activity.Current is { IdFormat: System.Diagnostics.ActivityIdFormat.W3C, Id: { } traceParent })
        {
            context.Response.Headers[TraceParentHeader] = traceParent;
        }

        return next(context);
    });

    public static bool IsSane(ReadOnlySpan<char> id)
    {
        if (id.IsEmpty || id.Length > 64)
        {
            return false;
        }

        foreach (var c in id)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }
}
