using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;

namespace FastIngest.Dashboard;

/// <summary>
/// Builds a page. Markup only ever enters through interpolated strings whose literal parts are markup and whose
/// holes are data: every hole is HTML-encoded by <see cref="HtmlHandler"/> (quotes included, so a hole is safe in
/// an attribute too). There is no method that appends a string unencoded, so a test name, a failure message or a
/// branch from a CI upload can never become markup, whoever writes the next page.
/// </summary>
public sealed class Html
{
    private readonly StringBuilder _text = new(16 * 1024);

    public Html Add([InterpolatedStringHandlerArgument("")] ref HtmlHandler markup) => this;

    /// <summary>Text, encoded (a shorthand for a single hole).</summary>
    public Html Text(string? text)
    {
        Encode(text);
        return this;
    }

    public override string ToString() => _text.ToString();

    internal void AppendMarkup(string literal) => _text.Append(literal);

    internal void Encode(string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            _text.Append(HtmlEncoder.Default.Encode(ShowBidiControls(value)));
        }
    }

    /// <summary>
    /// Direction overrides and isolates (U+202E turns "gnp.exe" into what reads "exe.png") are shown as what they
    /// are, <c>[U+202E]</c>, instead of reordering the text around them: uploaded names must read as uploaded.
    /// </summary>
    private static string ShowBidiControls(string value)
    {
        if (value.AsSpan().IndexOfAny(s_bidiControls) < 0)
        {
            return value;
        }

        var builder = new StringBuilder(value.Length + 16);
        foreach (var c in value)
        {
            if (s_bidiControls.Contains(c))
            {
                builder.Append(CultureInfo.InvariantCulture, $"[U+{(int)c:X4}]");
            }
            else
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }

    private static readonly System.Buffers.SearchValues<char> s_bidiControls =
        System.Buffers.SearchValues.Create("\u061C\u200E\u200F\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069");

    /// <summary>Literal parts of the interpolated string are markup; holes are encoded.</summary>
    [InterpolatedStringHandler]
    public ref struct HtmlHandler
    {
        private readonly Html _html;

        internal HtmlHandler(int literalLength, int formattedCount, Html html)
        {
            _ = literalLength;
            _ = formattedCount;
            _html = html;
        }

        internal readonly void AppendLiteral(string literal) => _html.AppendMarkup(literal);

        public readonly void AppendFormatted(string? value) => _html.Encode(value);

        public readonly void AppendFormatted(Url value) => _html.Encode(value.Value);

        public readonly void AppendFormatted(long value) => _html.AppendMarkup(value.ToString(CultureInfo.InvariantCulture));

        public readonly void AppendFormatted(int value) => _html.AppendMarkup(value.ToString(CultureInfo.InvariantCulture));

        /// <summary>A number, shown to at most one decimal (no format string: it could carry text).</summary>
        public readonly void AppendFormatted(double value) => _html.AppendMarkup(value.ToString("0.#", CultureInfo.InvariantCulture));

        /// <summary>A fragment built by another <see cref="Html"/>: already safe.</summary>
        public readonly void AppendFormatted(Html fragment) => _html.AppendMarkup(fragment.ToString());
    }
}

/// <summary>
/// A link inside the dashboard: always a path on this server built from encoded segments, so a run id such as
/// <c>javascript:alert(1)</c> or <c>../../x</c> is one harmless segment, never a scheme or a way out.
/// </summary>
public readonly record struct Url
{
    private Url(string value) => Value = value;

    public string Value { get; }

    /// <summary>A fixed path of this server's dashboard (an asset): must start with <c>/ui/</c>.</summary>
    public static Url Local(string path) =>
        path.StartsWith("/ui/", StringComparison.Ordinal) && !path.Contains("//", StringComparison.Ordinal)
            ? new Url(path)
            : throw new ArgumentException("Dashboard links stay under /ui/.", nameof(path));

    /// <summary>A CI system's build page: only an absolute http(s) URL (checked again here, not only at ingest); else null.</summary>
    public static Url? External(string value) =>
        Ingest.RunFieldRules.BuildUrlError(value) is null ? new Url(value) : null;

    public static Url Of(params string[] segments)
    {
        var builder = new StringBuilder("/ui");
        foreach (var segment in segments)
        {
            // "." and ".." would be taken as dot segments by the browser: escape the dots too.
            builder.Append('/').Append(segment is "." or ".." ? segment.Replace(".", "%2E", StringComparison.Ordinal) : Uri.EscapeDataString(segment));
        }

        return new Url(builder.ToString());
    }

    /// <summary>Adds query parameters (each name and value escaped); null values are left out.</summary>
    public Url With(params (string Name, string? Value)[] query)
    {
        var builder = new StringBuilder(Value);
        var first = !Value.Contains('?', StringComparison.Ordinal);
        foreach (var (name, value) in query)
        {
            if (value is null)
            {
                continue;
            }

            builder.Append(first ? '?' : '&').Append(Uri.EscapeDataString(name)).Append('=').Append(Uri.EscapeDataString(value));
            first = false;
        }

        return new Url(builder.ToString());
    }
}
