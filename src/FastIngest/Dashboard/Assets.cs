using System.IO.Hashing;

namespace FastIngest.Dashboard;

/// <summary>
/// The stylesheet, embedded in the binary and served under a name that carries its content hash, so browsers may
/// keep it for a year and a new build is fetched at once. Nothing is ever loaded from elsewhere.
/// </summary>
public sealed class Assets
{
    private readonly byte[] _css;

    public Assets()
    {
        using var stream = typeof(Assets).Assembly.GetManifestResourceStream("dashboard.css")
            ?? throw new InvalidOperationException("The dashboard stylesheet is missing from the binary.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        _css = copy.ToArray();
        CssPath = $"/ui/assets/dashboard.{XxHash64.HashToUInt64(_css):x16}.css";
    }

    /// <summary>Where pages link the stylesheet.</summary>
    public string CssPath { get; }

    public Task ServeCssAsync(HttpContext context)
    {
        if (context.Request.Path != CssPath)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        }

        context.Response.ContentType = "text/css; charset=utf-8";
        context.Response.Headers.CacheControl = "public, max-age=31536000, immutable";
        context.Response.Headers.XContentTypeOptions = "nosniff";
        context.Response.ContentLength = _css.Length;
        return context.Response.Body.WriteAsync(_css).AsTask();
    }
}
