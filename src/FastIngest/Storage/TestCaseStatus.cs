namespace FastIngest.Storage;

/// <summary>A test case's outcome. <see cref="Error"/> (it could not run to an assertion) counts as failed in run counts.</summary>
public enum TestCaseStatus : byte
{
    Passed,
    Failed,
    Skipped,
    Error,
}

public static class TestCaseStatuses
{
    public static string ToText(this TestCaseStatus status) => status switch
    {
        TestCaseStatus.Passed => "passed",
        TestCaseStatus.Failed => "failed",
        TestCaseStatus.Skipped => "skipped",
        _ => "error",
    };

    public static bool TryParse(ReadOnlySpan<char> text, out TestCaseStatus status)
    {
        switch (text)
        {
            case "passed": status = TestCaseStatus.Passed; return true;
            case "failed": status = TestCaseStatus.Failed; return true;
            case "skipped": status = TestCaseStatus.Skipped; return true;
            case "error": status = TestCaseStatus.Error; return true;
            default: status = default; return false;
        }
    }

    /// <summary>Failed or error: the test did not pass and was not skipped.</summary>
    public static bool IsFailure(this TestCaseStatus status) => status is TestCaseStatus.Failed or TestCaseStatus.Error;
}
