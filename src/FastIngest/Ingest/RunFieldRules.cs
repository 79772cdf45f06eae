namespace FastIngest.Ingest;

/// <summary>
/// The run fields' rules for text that is already a string (JUnit uploads take them from the query string or
/// headers). The JSON parser applies the same rules to raw bytes; both answer with these messages.
/// </summary>
public static class RunFieldRules
{
    public const string RunIdCharacters = "may contain only letters, digits and . _ : / -";
    public static readonly string RunIdLength = $"must be 1 to {IngestFields.MaxRunIdLength} characters";
    public static readonly string BranchLength = $"must be 1 to {IngestFields.MaxBranchLength} characters";
    public const string BranchControl = "must not contain control characters";
    public static readonly string CommitShaShape = $"must be {IngestFields.MinCommitShaLength} to {IngestFields.MaxCommitShaLength} hexadecimal characters";

    /// <summary>Longest CI build URL kept.</summary>
    public const int MaxBuildUrlLength = 2048;

    /// <summary>
    /// A CI build URL is shown as a link: only an absolute http(s) URL without control characters is one, so a
    /// <c>javascript:</c> or <c>data:</c> value from an upload can never become a link.
    /// </summary>
    public static string? BuildUrlError(string value) =>
        value.Length is 0 or > MaxBuildUrlLength ? $"must be 1 to {MaxBuildUrlLength} characters"
        : value.Any(char.IsControl) || !Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
            ? "must be an absolute http or https URL"
            : null;

    public static bool IsRunIdByte(byte b) =>
        (uint)(b - 'a') <= 'z' - 'a' || (uint)(b - 'A') <= 'Z' - 'A' || (uint)(b - '0') <= 9
        || b is (byte)'.' or (byte)'_' or (byte)':' or (byte)'/' or (byte)'-';

    public static string? RunIdError(string value)
    {
        if (value.Length is 0 or > IngestFields.MaxRunIdLength)
        {
            return RunIdLength;
        }

        foreach (var c in value)
        {
            if (c > 127 || !IsRunIdByte((byte)c))
            {
                return RunIdCharacters;
            }
        }

        return null;
    }

    public static string? BranchError(string value)
    {
        if (value.Length is 0 or > IngestFields.MaxBranchLength)
        {
            return BranchLength;
        }

        foreach (var c in value)
        {
            if (char.IsControl(c))
            {
                return BranchControl;
            }
        }

        return null;
    }

    /// <summary>The lower-case form of a valid commit SHA, or null when it is not one.</summary>
    public static string? NormalizeCommitSha(string value)
    {
        if (value.Length < IngestFields.MinCommitShaLength || value.Length > IngestFields.MaxCommitShaLength)
        {
            return null;
        }

        foreach (var c in value)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return null;
            }
        }

        return value.ToLowerInvariant();
    }
}
