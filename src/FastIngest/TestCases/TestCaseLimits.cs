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

    /// <summary>Failure messages are cut to this once a run's <see cref="MessageBudgetChars"/> is spent.</summary>
    public const int ShortFailureMessageLength = 256;

    /// <summary>Attempts are numbered 1..this; retries beyond are a sign of a broken retry loop, not data.</summary>
    public const int MaxAttempt = 64;

    /// <summary>Most test cases (attempts included) in one run.</summary>
    public int MaxTestCases { get; init; } = 100_000;

    /// <summary>
    /// Most characters of test names, suites and files one run may carry (a suite repeated across cases counts
    /// once); beyond it the upload is refused. 8 Mi characters is 16 MiB of strings.
    /// </summary>
    public long MaxNameChars { get; init; } = 8L * 1024 * 1024;

    /// <summary>
    /// Characters of failure messages kept at full length (up to <see cref="MaxFailureMessageLength"/> each) per
    /// run; after that each message keeps its first <see cref="ShortFailureMessageLength"/> characters. A run
    /// with thousands of failing tests is stored rather than refused, and its memory stays bounded:
    /// at most this plus <see cref="MaxTestCases"/> short messages.
    /// </summary>
    public long MessageBudgetChars { get; init; } = 8L * 1024 * 1024;

    public static readonly TestCaseLimits Default = new();
}
