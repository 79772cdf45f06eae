using System.Buffers;
using System.Globalization;
using System.Text;
using System.Xml;
using FastIngest.Ingest;
using FastIngest.Storage;

namespace FastIngest.TestCases;

/// <summary>
/// Streams a JUnit XML report into a <see cref="TestCaseSetBuilder"/> with one forward pass of
/// <see cref="XmlReader"/>: memory stays bounded by what is kept (see <see cref="TestCaseLimits"/>), not by the
/// file, because system-out, system-err, properties and stack traces are skipped unread and failure text is
/// read in chunks only up to the message limit.
/// <para>
/// Dialects: a <c>&lt;testsuites&gt;</c> or bare <c>&lt;testsuite&gt;</c> root, suites nested to any depth (the
/// innermost suite names cases without a <c>classname</c>), <c>time</c> missing or with thousands separators,
/// <c>&lt;failure&gt;</c>, <c>&lt;error&gt;</c> and <c>&lt;skipped&gt;</c>, and Maven Surefire's rerun elements:
/// <c>&lt;flakyFailure&gt;</c> (failed, then passed on a rerun) and <c>&lt;rerunFailure&gt;</c> (failed on every
/// rerun) become attempts. A test case repeated in the file (pytest-rerunfailures, Jest retries) is a further
/// attempt of the same test.
/// </para>
/// <para>DTDs are refused and no external resource is ever resolved: no entity expansion, no XXE.</para>
/// </summary>
public static class JUnitXmlReader
{
    /// <summary>
    /// Deepest element nesting accepted. XmlReader keeps a node per open level, so depth is memory; real
    /// reports nest a handful of suites.
    /// </summary>
    public const int MaxDepth = 32;

    private static readonly XmlReaderSettings s_settings = new()
    {
        Async = true,
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        IgnoreComments = true,
        IgnoreProcessingInstructions = true,
        IgnoreWhitespace = true,
        CloseInput = false,
        MaxCharactersFromEntities = 1024,
    };

    public static async Task<JUnitDocument> ReadAsync(Stream xml, TestCaseLimits limits)
    {
        using var builder = new TestCaseSetBuilder(limits);
        using var reader = XmlReader.Create(xml, s_settings);
        var position = (IXmlLineInfo)reader;
        await reader.MoveToContentAsync(); // a document without a root element throws XmlException here
        if (reader.LocalName is not ("testsuites" or "testsuite"))
        {
            throw new JUnitFormatException(position.LineNumber, position.LinePosition,
                $"the root element is <{reader.Name}>; expected <testsuites> or <testsuite>");
        }

        var duration = ParseTime(reader, reader.GetAttribute("time"));
        DateTimeOffset? timestamp = null;
        var suites = new List<string>();
        var scratch = ArrayPool<char>.Shared.Rent(1024);
        try
        {
            var advance = false; // the root is the current node
            while (!advance || await ReadAsync(reader))
            {
                advance = true;
                if (reader.NodeType == XmlNodeType.EndElement)
                {
                    if (reader.LocalName == "testsuite" && suites.Count > 0)
                    {
                        suites.RemoveAt(suites.Count - 1);
                    }

                    continue;
                }

                if (reader.NodeType != XmlNodeType.Element)
                {
                    continue;
                }

                switch (reader.LocalName)
                {
                    case "testsuites":
                        break;
                    case "testsuite":
                        timestamp ??= ParseTimestamp(reader.GetAttribute("timestamp"));
                        if (!reader.IsEmptyElement)
                        {
                            suites.Add(reader.GetAttribute("name") ?? "");
                        }

                        break;
                    case "testcase":
                        await ReadTestCaseAsync(reader, builder, suites.Count > 0 ? suites[^1] : "", scratch);
                        break;
                    default:
                        // properties, system-out, system-err and anything unknown: skipped without being read.
                        await SkipAsync(reader);
                        advance = false;
                        break;
                }
            }
        }
        finally
        {
            ArrayPool<char>.Shared.Return(scratch);
        }

        return new JUnitDocument(builder.Build(), duration, timestamp);
    }

    /// <summary>Reads one <c>&lt;testcase&gt;</c> and leaves the reader on its end (or on it, when empty).</summary>
    private static async Task ReadTestCaseAsync(XmlReader reader, TestCaseSetBuilder builder, string suite, char[] scratch)
    {
        var position = (IXmlLineInfo)reader;
        var (line, column) = (position.LineNumber, position.LinePosition);
        var name = reader.GetAttribute("name");
        if (string.IsNullOrEmpty(name))
        {
            throw new JUnitFormatException(line, column, "<testcase> has no name attribute");
        }

        var className = reader.GetAttribute("classname");
        var file = reader.GetAttribute("file");
        var duration = ParseTime(reader, reader.GetAttribute("time")) ?? 0;
        var status = TestCaseStatus.Passed;
        string? message = null;
        List<(TestCaseStatus Status, string? Message, long DurationMs)>? before = null, after = null;
        if (!reader.IsEmptyElement)
        {
            var depth = reader.Depth;
            var advance = true;
            while (!advance || await ReadAsync(reader))
            {
                advance = true;
                if (reader.NodeType == XmlNodeType.EndElement && reader.Depth == depth)
                {
                    break;
                }

                if (reader.NodeType != XmlNodeType.Element)
                {
                    continue;
                }

                switch (reader.LocalName)
                {
                    case "failure":
                        status = TestCaseStatus.Failed;
                        message = await ReadMessageAsync(reader, scratch);
                        break;
                    case "error":
                        status = TestCaseStatus.Error;
                        message = await ReadMessageAsync(reader, scratch);
                        break;
                    case "skipped":
                        status = TestCaseStatus.Skipped;
                        await SkipAsync(reader);
                        advance = false;
                        break;
                    case "flakyFailure" or "flakyError":
                        (before ??= []).Add(await ReadAttemptAsync(reader, scratch));
                        break;
                    case "rerunFailure" or "rerunError":
                        (after ??= []).Add(await ReadAttemptAsync(reader, scratch));
                        break;
                    default:
                        await SkipAsync(reader);
                        advance = false;
                        break;
                }
            }
        }

        var testSuite = string.IsNullOrEmpty(className) ? suite : className;
        var testFile = string.IsNullOrEmpty(file) ? null : file;
        // Attempts in the order they ran: Surefire's flaky failures came before the final pass, its reruns after
        // the first failure. Numbering is left to the builder, so a case repeated later in the file continues it.
        foreach (var earlier in before ?? [])
        {
            Add(builder, testSuite, name, testFile, earlier.Status, earlier.DurationMs, earlier.Message, line, column);
        }

        Add(builder, testSuite, name, testFile, status, duration, message, line, column);
        foreach (var later in after ?? [])
        {
            Add(builder, testSuite, name, testFile, later.Status, later.DurationMs, later.Message, line, column);
        }
    }

    private static void Add(TestCaseSetBuilder builder, string suite, string name, string? file, TestCaseStatus status,
        long durationMs, string? message, int line, int column)
    {
        if (builder.TryAdd(suite, name, file, status, durationMs, attempt: null, message) is { } problem)
        {
            throw new JUnitFormatException(line, column, $"<testcase name=\"{TestCaseSetBuilder.Shorten(name)}\">: {problem}");
        }
    }

    private static async Task<(TestCaseStatus, string?, long)> ReadAttemptAsync(XmlReader reader, char[] scratch)
    {
        var status = reader.LocalName.EndsWith("Error", StringComparison.Ordinal) ? TestCaseStatus.Error : TestCaseStatus.Failed;
        var duration = ParseTime(reader, reader.GetAttribute("time")) ?? 0;
        return (status, await ReadMessageAsync(reader, scratch), duration);
    }

    /// <summary>
    /// A failure's message: its <c>message</c> attribute, else the start of its text (a stack trace, read in
    /// chunks and only as far as the message limit), else its <c>type</c>. Leaves the reader on the element's end.
    /// </summary>
    private static async Task<string?> ReadMessageAsync(XmlReader reader, char[] scratch)
    {
        var message = reader.GetAttribute("message");
        var type = reader.GetAttribute("type");
        if (string.IsNullOrWhiteSpace(message))
        {
            message = null;
        }

        if (reader.IsEmptyElement)
        {
            return message ?? type;
        }

        var depth = reader.Depth;
        StringBuilder? text = null;
        var advance = true;
        while (!advance || await ReadAsync(reader))
        {
            advance = true;
            if (reader.NodeType == XmlNodeType.EndElement && reader.Depth == depth)
            {
                break;
            }

            if (reader.NodeType == XmlNodeType.Element)
            {
                await SkipAsync(reader); // e.g. Surefire's <stackTrace> and <system-out> inside rerun elements
                advance = false;
                continue;
            }

            if (message is null && reader.NodeType is XmlNodeType.Text or XmlNodeType.CDATA)
            {
                text ??= new StringBuilder();
                await AppendBoundedAsync(reader, text, scratch);
            }
        }

        return message ?? (text is { Length: > 0 } ? text.ToString() : null) ?? type;
    }

    private static async Task AppendBoundedAsync(XmlReader reader, StringBuilder text, char[] scratch)
    {
        // One character past the limit, so the builder knows to cut and mark the message.
        var room = TestCaseLimits.MaxFailureMessageLength + 1 - text.Length;
        if (room <= 0)
        {
            return;
        }

        if (!reader.CanReadValueChunk)
        {
            var value = reader.Value;
            text.Append(value, 0, Math.Min(room, value.Length));
            return;
        }

        // Whatever is left of the value after the limit is skipped by the next Read without being kept.
        int read;
        while (room > 0 && (read = await reader.ReadValueChunkAsync(scratch, 0, Math.Min(scratch.Length, room))) > 0)
        {
            text.Append(scratch, 0, read);
            room -= read;
        }
    }

    private static async Task<bool> ReadAsync(XmlReader reader)
    {
        if (!await reader.ReadAsync())
        {
            return false;
        }

        if (reader.Depth > MaxDepth)
        {
            var position = (IXmlLineInfo)reader;
            throw new JUnitFormatException(position.LineNumber, position.LinePosition, $"elements are nested deeper than {MaxDepth} levels");
        }

        return true;
    }

    /// <summary>Like <see cref="XmlReader.Skip"/> (ends on the node after the element), but with the depth checked.</summary>
    private static async Task SkipAsync(XmlReader reader)
    {
        if (reader.NodeType != XmlNodeType.Element || reader.IsEmptyElement)
        {
            await ReadAsync(reader);
            return;
        }

        var depth = reader.Depth;
        while (await ReadAsync(reader))
        {
            if (reader.NodeType == XmlNodeType.EndElement && reader.Depth == depth)
            {
                await ReadAsync(reader);
                return;
            }
        }
    }

    /// <summary>JUnit's <c>time</c>: seconds, possibly fractional, sometimes written with thousands separators.</summary>
    private static long? ParseTime(XmlReader reader, string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var cleaned = text.Contains(',', StringComparison.Ordinal) ? text.Replace(",", "", StringComparison.Ordinal) : text;
        if (double.TryParse(cleaned, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds)
            && double.IsFinite(seconds) && seconds >= 0 && seconds * 1000 <= IngestFields.MaxDurationMs)
        {
            return (long)Math.Round(seconds * 1000, MidpointRounding.AwayFromZero);
        }

        var position = (IXmlLineInfo)reader;
        throw new JUnitFormatException(position.LineNumber, position.LinePosition,
            $"<{reader.Name}> time=\"{(text.Length <= 40 ? text : text[..40] + "…")}\" is not a number of seconds from 0 to 7 days");
    }

    /// <summary>JUnit timestamps usually carry no offset (they are local to the CI machine); those are read as UTC.</summary>
    private static DateTimeOffset? ParseTimestamp(string? text) =>
        !string.IsNullOrWhiteSpace(text)
        && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value)
            ? value
            : null;
}
