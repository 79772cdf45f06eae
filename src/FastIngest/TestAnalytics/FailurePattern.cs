using System.IO.Hashing;
using System.Text;
using System.Text.RegularExpressions;

namespace FastIngest.TestAnalytics;

/// <summary>
/// What a failure message says once the parts that change from run to run are taken out: numbers, hex ids and
/// addresses, UUIDs, timestamps and temporary paths. Messages with the same pattern are one failure group, so a
/// broken dependency that fails 300 tests with "connection refused (127.0.0.1:5432) after 3012 ms" shows as one
/// group, while "expected 200 but was 500" and "NullPointerException" stay apart.
/// </summary>
public static partial class FailurePattern
{
    /// <summary>Only the start of a message decides its group: stack traces differ below their first frames.</summary>
    public const int MaxPatternLength = 300;

    /// <summary>
    /// Only this much of a message is read: a message cut short once a run's message budget is spent keeps its
    /// first 255 characters and an ellipsis, and must land in the same group as the whole one.
    /// </summary>
    private const int MaxInputLength = 250;

    public static string Of(string message)
    {
        var text = message.Length > MaxInputLength ? message[..MaxInputLength] : message.TrimEnd('…');
        text = Uuid().Replace(text, "<uuid>");
        text = Timestamp().Replace(text, "<time>");
        text = TempPath().Replace(text, "<tmp>");
        text = HexNumber().Replace(text, "<hex>");
        text = HexRun().Replace(text, m => m.Value.Any(char.IsAsciiDigit) ? "<hex>" : m.Value);
        text = Number().Replace(text, "<n>");
        text = Whitespace().Replace(text, " ").Trim();
        return text.Length > MaxPatternLength ? text[..MaxPatternLength] : text;
    }

    /// <summary>The group key of a pattern (64 bits of XxHash64; a project has at most thousands of patterns).</summary>
    public static long Fingerprint(string pattern) => (long)XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(pattern));

    [GeneratedRegex(@"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")]
    private static partial Regex Uuid();

    [GeneratedRegex(@"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b|\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b")]
    private static partial Regex Timestamp();

    [GeneratedRegex(@"(?:/tmp|/var/tmp|/private/var/folders|/var/folders|[A-Za-z]:\\Users\\[^\\\s]+\\AppData\\Local\\Temp|[A-Za-z]:\\Windows\\Temp)[^\s'""<>)\]]*", RegexOptions.IgnoreCase)]
    private static partial Regex TempPath();

    [GeneratedRegex(@"\b0[xX][0-9a-fA-F]+\b")]
    private static partial Regex HexNumber();

    [GeneratedRegex(@"\b[0-9a-fA-F]{8,}\b")]
    private static partial Regex HexRun();

    [GeneratedRegex(@"\d+(?:\.\d+)?")]
    private static partial Regex Number();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
