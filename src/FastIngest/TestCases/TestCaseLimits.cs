namespace FastIngest.TestCases;

/// <summary>
/// What one run may carry. Together they bound the memory a single upload can hold, whatever the size of the
/// file it came in: a JUnit file's system-out, stack traces and properties are dropped while streaming, and
/// what is kept is capped here.
/// </summary>
public sealed record TestCaseLimits
{
    public const int MaxNameLength = 1024;
    public const int MaxSuiteLength = 1024;
    public const int MaxFileLength = 1024;

    /// <summary>Failure messages longer than this are cut (and marked), not refused: stack traces run long.</summary>
    public const int MaxFailureMessageLength = 4096;

    /// <summary>Attempts are numbered 1..this; retries beyond are a sign of a broken retry loop, not data.</summary>
    public const int MaxAttempt = 64;

    /// <summary>Most test cases (attempts included) in one run.</summary>
    public int MaxTestCases { get; init; } = 100_000;

    /// <summary>
    /// Most characters of names, suites, files and failure messages kept for one run (suites repeated across
    /// cases count once). 16 Mi characters is 32 MiB of strings.
    /// </summary>
    public long MaxRetainedChars { get; init; } = 16L * 1024 * 1024;

    public static readonly TestCaseLimits Default = new();
}
