using System.Text;
using System.Xml;
using FastIngest.Storage;
using FastIngest.TestCases;

namespace FastIngest.Tests.TestCases;

/// <summary>The streaming JUnit reader against hand-written reports shaped like each common dialect.</summary>
public sealed class JUnitXmlReaderTests
{
    private static async Task<JUnitDocument> ReadReportAsync(string file, TestCaseLimits? limits = null)
    {
        await using var stream = File.OpenRead(Path.Combine(AppContext.BaseDirectory, "TestCases", "Reports", file));
        return await JUnitXmlReader.ReadAsync(stream, limits ?? TestCaseLimits.Default);
    }

    private static Task<JUnitDocument> ReadTextAsync(string xml, TestCaseLimits? limits = null) =>
        JUnitXmlReader.ReadAsync(new MemoryStream(Encoding.UTF8.GetBytes(xml)), limits ?? TestCaseLimits.Default);

    private static string Describe(TestCase c) => $"{c.Suite}|{c.Name}|{c.Status.ToText()}|{c.DurationMs}|{c.Attempt}";

    [Fact]
    public async Task SurefireReportTurnsFlakyAndRerunElementsIntoAttempts()
    {
        var report = await ReadReportAsync("surefire.xml");

        const string Suite = "com.acme.CalculatorTest";
        Assert.Equal(
            [
                $"{Suite}|adds|passed|12|1",
                $"{Suite}|divides|failed|3|1",
                $"{Suite}|connects|failed|0|1",
                $"{Suite}|connects|passed|250|2",
                $"{Suite}|persists|failed|100|1",
                $"{Suite}|persists|failed|0|2",
                $"{Suite}|ignored|skipped|0|1",
                $"{Suite}|crashes|error|1|1",
            ],
            report.Tests.Cases.Select(Describe));
        Assert.Equal("expected: <2> but was: <3>", report.Tests.Cases[1].FailureMessage);
        Assert.Equal("Read timed out", report.Tests.Cases[2].FailureMessage);
        Assert.Equal("disk still full", report.Tests.Cases[5].FailureMessage);
        // Six tests: each counted once by its last attempt; the flaky one passed, error counts as failed.
        Assert.Equal(new RunCounts(6, 2, 3, 1), report.Tests.Counts);
        Assert.True(report.Tests.AnyFailed);
        Assert.Equal(1_234_500, report.DurationMs); // time="1,234.5": a thousands separator, as Surefire writes it
        Assert.Null(report.Timestamp);
    }

    [Fact]
    public async Task PytestReportWithRepeatedCaseCountsTheRerunAsASecondAttempt()
    {
        var report = await ReadReportAsync("pytest.xml");

        Assert.Equal(
            [
                "tests.test_api|test_create|passed|101|1",
                "tests.test_api|test_delete[admin]|failed|200|1",
                "tests.test_api|test_needs_db|skipped|0|1",
                "tests.test_api|test_flaky|failed|300|1",
                "tests.test_api|test_flaky|passed|310|2",
            ],
            report.Tests.Cases.Select(Describe));
        Assert.Equal(new RunCounts(4, 2, 1, 1), report.Tests.Counts);
        Assert.Null(report.DurationMs);
        Assert.Equal(911, report.Tests.TotalDurationMs);
        Assert.Equal(DateTimeOffset.Parse("2026-01-12T10:00:00.123456+00:00", System.Globalization.CultureInfo.InvariantCulture), report.Timestamp);
    }

    [Fact]
    public async Task JestReportTakesTheFailureTextWhenThereIsNoMessageAttribute()
    {
        var report = await ReadReportAsync("jest.xml");

        Assert.Equal(3, report.Tests.Cases.Count);
        var failed = report.Tests.Cases[1];
        Assert.Equal(TestCaseStatus.Failed, failed.Status);
        Assert.StartsWith("Error: expect(jest.fn()).toHaveBeenCalledTimes(expected)", failed.FailureMessage, StringComparison.Ordinal);
        Assert.Equal("src/Button.test.tsx", failed.File);
        Assert.Equal(4200, report.DurationMs);
        Assert.Equal(new DateTimeOffset(2026, 1, 12, 10, 0, 0, TimeSpan.Zero), report.Timestamp); // no offset: read as UTC
        Assert.Equal(new RunCounts(3, 2, 1, 0), report.Tests.Counts);
    }

    [Fact]
    public async Task GoJunitReportIsRead()
    {
        var report = await ReadReportAsync("go-junit-report.xml");

        Assert.Equal(
            [
                "github.com/acme/store|TestPut|passed|0|1",
                "github.com/acme/store|TestGet/missing_key|failed|10|1",
                "github.com/acme/store|TestCompact|skipped|0|1",
            ],
            report.Tests.Cases.Select(Describe));
        Assert.Equal("Failed", report.Tests.Cases[1].FailureMessage);
        Assert.Equal(new DateTimeOffset(2026, 1, 12, 10, 0, 0, TimeSpan.Zero), report.Timestamp);
    }

    [Fact]
    public async Task NestedSuitesNameCasesWithoutClassnameAfterTheInnermostSuite()
    {
        var report = await ReadReportAsync("nested-nunit.xml");

        Assert.Equal(
            [
                "Acme.Tests.MathTests|Adds|passed|0|1",
                "Acme.Tests.MathTests|Subtracts|error|0|1",
                "Acme.Tests.StringTests|Trims|passed|500|1",
            ],
            report.Tests.Cases.Select(Describe));
        Assert.Equal("System.InvalidOperationException : Sequence contains no elements", report.Tests.Cases[1].FailureMessage);
    }

    [Fact]
    public async Task BareEmptySuiteIsAValidReportWithNoTests()
    {
        var report = await ReadTextAsync("""<testsuite name="empty" tests="0"/>""");

        Assert.Empty(report.Tests.Cases);
        Assert.Equal(new RunCounts(0, 0, 0, 0), report.Tests.Counts);
    }

    [Fact]
    public async Task LongFailureTextIsCutAtTheMessageLimitAndMarked()
    {
        var trace = string.Concat(Enumerable.Repeat("at Frame.Method() in File.cs:line 1\n", 10_000));
        var report = await ReadTextAsync($"""<testsuite name="s"><testcase name="t"><failure>{trace}</failure></testcase></testsuite>""");

        var message = report.Tests.Cases[0].FailureMessage!;
        Assert.Equal(TestCaseLimits.MaxFailureMessageLength, message.Length);
        Assert.EndsWith("…", message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("<html><body/></html>", "root element is <html>")]
    [InlineData("""<testsuite><testcase classname="c"/></testsuite>""", "line 1, column 13: <testcase> has no name attribute")]
    [InlineData("""<testsuite><testcase name="t" time="fast"/></testsuite>""", "time=\"fast\" is not a number of seconds")]
    [InlineData("""<testsuite><testcase name="t" time="-1"/></testsuite>""", "is not a number of seconds")]
    public async Task UnusableReportsNameTheProblemAndWhere(string xml, string expected)
    {
        var error = await Assert.ThrowsAsync<JUnitFormatException>(() => ReadTextAsync(xml));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("<testsuite><testcase name=\"t\"></testsuite>")]
    [InlineData("<testsuite><testcase name=\"t\"/>")]
    [InlineData("<testsuite name=\"a\" name=\"b\"/>")]
    public async Task MalformedXmlIsAnXmlErrorWithItsPosition(string xml)
    {
        var error = await Assert.ThrowsAsync<XmlException>(() => ReadTextAsync(xml));
        Assert.True(error.LineNumber > 0);
    }

    [Theory]
    [InlineData("")]
    [InlineData("<!-- only a comment -->")]
    public async Task BodyWithoutARootElementIsAnXmlError(string xml)
    {
        var error = await Assert.ThrowsAsync<XmlException>(() => ReadTextAsync(xml));
        Assert.Contains("Root element is missing", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DtdsAreRefusedSoEntitiesCannotExpandOrReachFiles()
    {
        const string Xxe = """
            <?xml version="1.0"?>
            <!DOCTYPE testsuite [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
            <testsuite name="x"><testcase name="&secret;"/></testsuite>
            """;
        const string Billion = """
            <?xml version="1.0"?>
            <!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
            <testsuite name="&lol2;"/>
            """;

        await Assert.ThrowsAsync<XmlException>(() => ReadTextAsync(Xxe));
        await Assert.ThrowsAsync<XmlException>(() => ReadTextAsync(Billion));
    }

    [Fact]
    public async Task MoreCasesThanTheLimitAreRefusedAtTheCaseThatCrossesIt()
    {
        var cases = string.Concat(Enumerable.Range(0, 11).Select(i => $"\n<testcase name=\"t{i}\"/>"));

        var error = await Assert.ThrowsAsync<JUnitFormatException>(() =>
            ReadTextAsync($"<testsuite name=\"s\">{cases}</testsuite>", new TestCaseLimits { MaxTestCases = 10 }));

        Assert.Contains("line 12", error.Message, StringComparison.Ordinal);
        Assert.Contains("at most 10 test cases", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RetainedTextBeyondTheLimitIsRefused()
    {
        var cases = string.Concat(Enumerable.Range(0, 100).Select(i => $"<testcase name=\"{new string('n', 1000)}{i}\"/>"));

        var error = await Assert.ThrowsAsync<JUnitFormatException>(() =>
            ReadTextAsync($"<testsuite name=\"s\">{cases}</testsuite>", new TestCaseLimits { MaxNameChars = 50_000 }));

        Assert.Contains("exceed 50000 characters", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FailureMessagesPastTheBudgetAreShortenedNotRefused()
    {
        var trace = new string('x', 10_000);
        var cases = string.Concat(Enumerable.Range(0, 5).Select(i => $"<testcase name=\"t{i}\"><failure>{trace}</failure></testcase>"));

        var report = await ReadTextAsync($"<testsuite name=\"s\">{cases}</testsuite>", new TestCaseLimits { MessageBudgetChars = 8_000 });

        // Two full messages spend the budget; every later one keeps only its start.
        Assert.Equal([4096, 4096, 256, 256, 256], report.Tests.Cases.Select(c => c.FailureMessage!.Length));
    }

    [Fact]
    public async Task SameFileGivesTheSameFingerprintAndAnyChangeAnother()
    {
        var original = await ReadReportAsync("surefire.xml");
        var again = await ReadReportAsync("surefire.xml");
        var text = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "TestCases", "Reports", "surefire.xml"));
        var changed = await ReadTextAsync(text.Replace("time=\"0.012\"", "time=\"0.013\"", StringComparison.Ordinal));

        Assert.Equal(original.Tests.Fingerprint, again.Tests.Fingerprint);
        Assert.NotEqual(original.Tests.Fingerprint, changed.Tests.Fingerprint);
    }
}
