using System.Globalization;

namespace FastIngest.TestAnalytics;

/// <summary>
/// A test's public id: <c>tst_</c> and its compact key. Keys are never reused (AUTOINCREMENT) and every read
/// checks the test belongs to the caller's project, so knowing another project's id reveals nothing (404).
/// </summary>
public static class TestIds
{
    private const string Prefix = "tst_";

    public static string Format(long key) => Prefix + key.ToString(CultureInfo.InvariantCulture);

    public static bool TryParse(string text, out long key)
    {
        key = 0;
        return text.StartsWith(Prefix, StringComparison.Ordinal) && text.Length <= 24
            && long.TryParse(text.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out key) && key > 0;
    }
}

/// <summary>A failure group's public id: <c>fgr_</c> and its key.</summary>
public static class FailureGroupIds
{
    public static string Format(long key) => "fgr_" + key.ToString(CultureInfo.InvariantCulture);
}
