using FastIngest.Auth;

namespace FastIngest.Http;

/// <summary>
/// Writes RFC 9457 <c>application/problem+json</c> bodies. Every error the API returns goes through here, so
/// each one carries the request id and, for validation, every field error at once. Never a stack trace.
/// </summary>
public static class Problems
{
    public const string ContentType = "application/problem+json";

    public static Task WriteAsync(
        HttpContext context,
        int status,
        string type,
        string title,
        string? detail = null,
        IReadOnlyList<FieldError>? errors = null)
    {
        var requestId = context.TraceIdentifier;
        return JsonResponse.WriteAsync(context, status, (type, title, status, detail, requestId, errors), static (json, p) =>
        {
            json.WriteStartObject();
            json.WriteString("type"u8, "urn:fastingest:problem:" + p.type);
            json.WriteString("title"u8, p.title);
            json.WriteNumber("status"u8, p.status);
            if (p.detail is not null)
            {
                json.WriteString("detail"u8, p.detail);
            }

            json.WriteString("request_id"u8, p.requestId);
            if (p.errors is { Count: > 0 })
            {
                json.WriteStartArray("errors"u8);
                foreach (var error in p.errors)
                {
                    json.WriteStartObject();
                    json.WriteString("field"u8, error.Field);
                    json.WriteString("message"u8, error.Message);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
            }

            json.WriteEndObject();
        }, ContentType);
    }

    /// <summary>
    /// Field errors listed in one answer at most. A 4 MB body of unknown fields once answered 16 MB of problem;
    /// the first 20 say what is wrong, and the detail says how many there were.
    /// </summary>
    public const int MaxListedErrors = 20;

    public static Task Validation(HttpContext context, IReadOnlyList<FieldError> errors) =>
        WriteAsync(context, StatusCodes.Status400BadRequest, "validation", "The request is invalid.",
            errors.Count == 1 ? $"{Describe(errors[0])}"
            : errors.Count > MaxListedErrors ? $"{errors.Count} fields are invalid; the first {MaxListedErrors} are listed."
            : $"{errors.Count} fields are invalid.",
            errors.Count > MaxListedErrors ? errors.Take(MaxListedErrors).ToList() : errors);

    public static Task Unauthorized(HttpContext context, AuthFailure failure)
    {
        if (failure == AuthFailure.Overloaded)
        {
            return Unavailable(context, "auth-overloaded", "Token verification is saturated; retry shortly.");
        }

        context.Response.Headers.WWWAuthenticate = failure == AuthFailure.Missing
            ? "Bearer realm=\"fastingest\""
            : "Bearer realm=\"fastingest\", error=\"invalid_token\"";
        // One message for every cause, so a caller cannot probe which tokens exist; the log has the reason.
        var detail = failure == AuthFailure.Missing
            ? "Send 'Authorization: Bearer <token>'."
            : "The bearer token is not valid (malformed, unknown, revoked or expired).";
        return WriteAsync(context, StatusCodes.Status401Unauthorized, "unauthorized", "Authentication required.", detail);
    }

    public static Task Forbidden(HttpContext context, string detail) =>
        WriteAsync(context, StatusCodes.Status403Forbidden, "forbidden", "The token's scope does not allow this.", detail);

    public static Task NotFound(HttpContext context, string what) =>
        WriteAsync(context, StatusCodes.Status404NotFound, "not-found", "Not found.", $"{what} does not exist.");

    public static Task Conflict(HttpContext context, string type, string detail) =>
        WriteAsync(context, StatusCodes.Status409Conflict, type, "Conflict.", detail);

    public static Task Unavailable(HttpContext context, string type, string detail, int retryAfterSeconds = 1)
    {
        context.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return WriteAsync(context, StatusCodes.Status503ServiceUnavailable, type, "Service temporarily unavailable.", detail);
    }

    public static Task TooManyRequests(HttpContext context, string detail, int retryAfterSeconds)
    {
        context.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return WriteAsync(context, StatusCodes.Status429TooManyRequests, "rate-limited", "Too many requests.", detail);
    }

    public static Task UnsupportedMediaType(HttpContext context) =>
        WriteAsync(context, StatusCodes.Status415UnsupportedMediaType, "unsupported-media-type", "Unsupported media type.",
            "Send the body as 'Content-Type: application/json' (or a JUnit report as 'application/xml').");

    /// <summary>
    /// A body that could not be read: broken framing (400) or arriving too slowly (Kestrel's 408), with the status
    /// <see cref="RequestBody.MalformedReason"/> chose. The connection is not reused.
    /// </summary>
    public static Task MalformedBody(HttpContext context, string reason)
    {
        context.Response.Headers.Connection = "close";
        var status = context.Response.StatusCode is >= 400 and < 500 ? context.Response.StatusCode : StatusCodes.Status400BadRequest;
        return WriteAsync(context, status, status == StatusCodes.Status408RequestTimeout ? "body-too-slow" : "malformed-body",
            "The request body could not be read.", reason);
    }

    public static Task TooLarge(HttpContext context, long limit) =>
        WriteAsync(context, StatusCodes.Status413PayloadTooLarge, "body-too-large", "The request body is too large.",
            $"The limit is {limit} bytes.");

    /// <summary>
    /// For a response that ended with an error status and no body (no route matched, a method the route does not
    /// take, a status set without a body): the same problem+json as every other error, with the request id.
    /// </summary>
    public static Task ForBareStatus(HttpContext context)
    {
        var status = context.Response.StatusCode;
        var method = context.Request.Method;
        var path = context.Request.Path.Value;
        return status switch
        {
            StatusCodes.Status404NotFound => WriteAsync(context, status, "not-found", "Not found.", $"No route matches {method} {path}."),
            StatusCodes.Status405MethodNotAllowed => WriteAsync(context, status, "method-not-allowed", "Method not allowed.",
                $"{path} does not take {method}" + (context.Response.Headers.Allow.Count > 0 ? $"; it takes {context.Response.Headers.Allow}." : ".")),
            _ => WriteAsync(context, status, "http-" + status.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status) + "."),
        };
    }

    private static string Describe(FieldError error) =>
        error.Field.Length == 0 ? error.Message : $"'{error.Field}' {error.Message}";
}
