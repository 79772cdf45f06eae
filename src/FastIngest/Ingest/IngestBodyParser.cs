using System.Buffers;
using System.Text;
using System.Text.Json;
using FastIngest.Http;
using FastIngest.Storage;
using FastIngest.TestCases;

namespace FastIngest.Ingest;

/// <summary>
/// Hand-written ingest body parser: one forward pass of <see cref="Utf8JsonReader"/> over the request bytes,
/// no DOM, no reflection, no string per field name. Every field error is collected, so a client learns all of
/// them at once; unknown and repeated fields are errors, so typos cannot pass silently.
/// </summary>
public static class IngestBodyParser
{
    private static readonly JsonReaderOptions s_options = new()
    {
        MaxDepth = 4,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
    };

    [Flags]
    private enum Seen : ushort
    {
        None = 0,
        RunId = 1,
        Status = 2,
        DurationMs = 4,
        Timestamp = 8,
        Branch = 16,
        CommitSha = 32,
        Counts = 64,
        Tests = 128,
        BuildUrl = 256,
        Shard = 512,
    }

    /// <summary>Field errors reported per test case list; beyond this, one summary line says how many more.</summary>
    private const int MaxTestErrors = 20;

    public static bool TryParse(
        in ReadOnlySequence<byte> body,
        long projectKey,
        long receivedAtMs,
        out RunRecord? run,
        out List<FieldError>? errors,
        TestCaseLimits? testLimits = null)
    {
        run = null;
        errors = null;
        var reader = new Utf8JsonReader(body, s_options);
        var seen = Seen.None;
        string? runId = null, shard = null, branch = null, commitSha = null, buildUrl = null;
        bool? passed = null;
        long? durationMs = null;
        DateTimeOffset? timestamp = null;
        RunCounts? counts = null;
        TestCaseSet? tests = null;

        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                Add(ref errors, "", "the body must be a JSON object");
                return false;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals(IngestFields.RunId))
                {
                    if (Once(ref seen, Seen.RunId, "run_id", ref errors, ref reader))
                    {
                        runId = ReadRunId(ref reader, ref errors, "run_id");
                    }
                }
                else if (reader.ValueTextEquals(IngestFields.Shard))
                {
                    if (Once(ref seen, Seen.Shard, "shard", ref errors, ref reader))
                    {
                        shard = ReadRunId(ref reader, ref errors, "shard");
                    }
                }
                else if (reader.ValueTextEquals(IngestFields.Status))
                {
                    if (Once(ref seen, Seen.Status, "status", ref errors, ref reader))
                    {
                        passed = ReadStatus(ref reader, ref errors);
                    }
                }
                else if (reader.ValueTextEquals(IngestFields.DurationMs))
                {
                    if (Once(ref seen, Seen.DurationMs, "duration_ms", ref errors, ref reader))
                    {
                        durationMs = ReadInteger(ref reader, "duration_ms", IngestFields.MaxDurationMs, ref errors);
                    }
                }
                else if (reader.ValueTextEquals(IngestFields.Timestamp))
                {
                    if (Once(ref seen, Seen.Timestamp, "timestamp", ref errors, ref reader))
                    {
                        timestamp = ReadTimestamp(ref reader, ref errors);
                    }
                }
                else if (reader.ValueTextEquals(IngestFields.BuildUrl))
                {
                    if (Once(ref seen, Seen.BuildUrl, "build_url", ref errors, ref reader))
                    {
                        buildUrl = ReadText(ref reader, ref errors, "build_url", RunFieldRules.BuildUrlError);
                    }
                }
                else if (reader.ValueTextEquals(IngestFields.Branch))
                {
                    if (Once(ref seen, Seen.Branch, "branch", ref errors, ref reader))
                    {
                        branch = ReadBranch(ref reader, ref errors);
                    }
                }
                else if (reader.ValueTextEquals(IngestFields.CommitSha))
                {
                    if (Once(ref seen, Seen.CommitSha, "commit_sha", ref errors, ref reader))
                    {
                        commitSha = ReadCommitSha(ref reader, ref errors);
                    }
                }
                else if (reader.ValueTextEquals(IngestFields.Counts))
                {
                    if (Once(ref seen, Seen.Counts, "counts", ref errors, ref reader))
                    {
                        counts = ReadCounts(ref reader, ref errors);
                    }
                }
                else if (reader.ValueTextEquals(IngestFields.Tests))
                {
                    if (Once(ref seen, Seen.Tests, "tests", ref errors, ref reader))
                    {
                        tests = ReadTests(ref reader, testLimits ?? TestCaseLimits.Default, ref errors);
                    }
                }
                else
                {
                    Add(ref errors, NameOf(ref reader), "is not a known field");
                    reader.Read();
                    reader.Skip();
                }
            }

            if (reader.TokenType != JsonTokenType.EndObject)
            {
                Add(ref errors, "", "the body must be a single JSON object");
                return false;
            }

            if (reader.Read())
            {
                Add(ref errors, "", "unexpected content after the JSON object");
                return false;
            }
        }
        catch (JsonException e)
        {
            // Structural damage (truncation, bad escapes, depth, trailing data): nothing else can be trusted.
            errors = [new FieldError("", $"invalid JSON at byte {e.BytePositionInLine ?? reader.BytesConsumed}: {FirstSentence(e.Message)}")];
            return false;
        }
        catch (InvalidOperationException)
        {
            // Unescaping met a lone surrogate (e.g. "\uD800") or invalid UTF-8: the text is not a string at all.
            errors = [new FieldError("", $"invalid string at byte {reader.BytesConsumed}: not valid UTF-8 or UTF-16")];
            return false;
        }

        if ((seen & Seen.RunId) == 0) Add(ref errors, "run_id", "is required");
        if ((seen & Seen.Status) == 0) Add(ref errors, "status", "is required");
        if ((seen & Seen.DurationMs) == 0) Add(ref errors, "duration_ms", "is required");
        if ((seen & Seen.Timestamp) == 0) Add(ref errors, "timestamp", "is required");
        if (tests is not null)
        {
            // Counts follow from the test cases; a client that sends both must agree with them.
            if (counts is { } sent && sent != tests.Counts)
            {
                var c = tests.Counts;
                Add(ref errors, "counts", $"does not match the test cases (total {c.Total}, passed {c.Passed}, failed {c.Failed}, skipped {c.Skipped}); omit counts to have them derived");
            }

            counts = tests.Counts;
        }

        if (errors is not null)
        {
            return false;
        }

        run = new RunRecord
        {
            ProjectKey = projectKey,
            RunId = runId!,
            Shard = shard,
            Passed = passed!.Value,
            DurationMs = durationMs!.Value,
            TimestampMs = timestamp!.Value.ToUnixTimeMilliseconds(),
            Branch = branch,
            BuildUrl = buildUrl,
            CommitSha = commitSha,
            Counts = counts,
            Tests = tests?.Cases,
            Fingerprint = RunFingerprint.Compute(passed.Value, durationMs.Value, timestamp.Value.UtcTicks, branch, commitSha, counts, tests?.Fingerprint),
            ReceivedAtMs = receivedAtMs,
        };
        return true;
    }

    private static bool Once(ref Seen seen, Seen field, string name, ref List<FieldError>? errors, ref Utf8JsonReader reader)
    {
        if ((seen & field) != 0)
        {
            Add(ref errors, name, "appears more than once");
            reader.Read();
            reader.Skip();
            return false;
        }

        seen |= field;
        reader.Read();
        return true;
    }

    /// <summary>A run id or a shard name: the same characters and length.</summary>
    private static string? ReadRunId(ref Utf8JsonReader reader, ref List<FieldError>? errors, string field)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            Add(ref errors, field, "must be a string");
            reader.Skip();
            return null;
        }

        Span<byte> scratch = stackalloc byte[IngestFields.MaxRunIdLength];
        var length = CopyShortString(ref reader, scratch);
        if (length < 0)
        {
            Add(ref errors, field, $"must be at most {IngestFields.MaxRunIdLength} characters");
            return null;
        }

        var value = scratch[..length];
        if (value.IsEmpty)
        {
            Add(ref errors, field, "must not be empty");
            return null;
        }

        foreach (var b in value)
        {
            if (!RunFieldRules.IsRunIdByte(b))
            {
                Add(ref errors, field, RunFieldRules.RunIdCharacters);
                return null;
            }
        }

        return Encoding.ASCII.GetString(value);
    }

    private static bool? ReadStatus(ref Utf8JsonReader reader, ref List<FieldError>? errors)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            if (reader.ValueTextEquals(IngestFields.Passed))
            {
                return true;
            }

            if (reader.ValueTextEquals(IngestFields.Failed))
            {
                return false;
            }
        }

        Add(ref errors, "status", "must be \"passed\" or \"failed\"");
        reader.Skip();
        return null;
    }

    private static long? ReadInteger(ref Utf8JsonReader reader, string field, long max, ref List<FieldError>? errors)
    {
        if (reader.TokenType != JsonTokenType.Number)
        {
            Add(ref errors, field, "must be an integer");
            reader.Skip();
            return null;
        }

        // TryGetInt64 refuses fractions, exponents and anything beyond 64 bits, which is exactly what we want.
        if (!reader.TryGetInt64(out var value))
        {
            Add(ref errors, field, $"must be an integer from 0 to {max}");
            return null;
        }

        if (value < 0 || value > max)
        {
            Add(ref errors, field, $"must be an integer from 0 to {max}");
            return null;
        }

        return value;
    }

    private static DateTimeOffset? ReadTimestamp(ref Utf8JsonReader reader, ref List<FieldError>? errors)
    {
        Span<byte> scratch = stackalloc byte[40];
        if (reader.TokenType == JsonTokenType.String && CopyShortString(ref reader, scratch) is var length and >= 0
            && Rfc3339.TryParse(scratch[..length], out var value))
        {
            return value;
        }

        Add(ref errors, "timestamp", "must be an RFC 3339 date-time with an offset, e.g. 2026-01-12T10:00:00Z");
        reader.Skip();
        return null;
    }

    private static string? ReadBranch(ref Utf8JsonReader reader, ref List<FieldError>? errors) =>
        ReadText(ref reader, ref errors, "branch", RunFieldRules.BranchError);

    private static string? ReadText(ref Utf8JsonReader reader, ref List<FieldError>? errors, string field, Func<string, string?> rule)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.String)
        {
            Add(ref errors, field, "must be a string");
            reader.Skip();
            return null;
        }

        string value;
        try
        {
            value = reader.GetString()!;
        }
        catch (InvalidOperationException)
        {
            Add(ref errors, field, "must be valid UTF-8");
            return null;
        }

        if (rule(value) is { } problem)
        {
            Add(ref errors, field, problem);
            return null;
        }

        return value;
    }

    private static string? ReadCommitSha(ref Utf8JsonReader reader, ref List<FieldError>? errors)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        Span<byte> scratch = stackalloc byte[IngestFields.MaxCommitShaLength];
        if (reader.TokenType == JsonTokenType.String && CopyShortString(ref reader, scratch) is var length
            && length >= IngestFields.MinCommitShaLength && IsHex(scratch[..length]))
        {
            return Encoding.ASCII.GetString(scratch[..length]).ToLowerInvariant();
        }

        Add(ref errors, "commit_sha", RunFieldRules.CommitShaShape);
        reader.Skip();
        return null;

        static bool IsHex(ReadOnlySpan<byte> text)
        {
            foreach (var b in text)
            {
                if (!char.IsAsciiHexDigit((char)b))
                {
                    return false;
                }
            }

            return true;
        }
    }

    private static RunCounts? ReadCounts(ref Utf8JsonReader reader, ref List<FieldError>? errors)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            Add(ref errors, "counts", "must be an object {total, passed, failed, skipped}");
            reader.Skip();
            return null;
        }

        long? total = null, passedCount = null, failedCount = null, skippedCount = null;
        var before = errors?.Count ?? 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            ref long? slot = ref total;
            string name;
            if (reader.ValueTextEquals(IngestFields.Total)) { name = "counts.total"; }
            else if (reader.ValueTextEquals(IngestFields.Passed)) { name = "counts.passed"; slot = ref passedCount; }
            else if (reader.ValueTextEquals(IngestFields.Failed)) { name = "counts.failed"; slot = ref failedCount; }
            else if (reader.ValueTextEquals(IngestFields.Skipped)) { name = "counts.skipped"; slot = ref skippedCount; }
            else
            {
                Add(ref errors, "counts." + NameOf(ref reader), "is not a known field");
                reader.Read();
                reader.Skip();
                continue;
            }

            reader.Read();
            if (slot is not null)
            {
                Add(ref errors, name, "appears more than once");
                reader.Skip();
                continue;
            }

            slot = ReadInteger(ref reader, name, IngestFields.MaxCount, ref errors) ?? -1;
        }

        if (total is null) Add(ref errors, "counts.total", "is required");
        if (passedCount is null) Add(ref errors, "counts.passed", "is required");
        if (failedCount is null) Add(ref errors, "counts.failed", "is required");
        if (skippedCount is null) Add(ref errors, "counts.skipped", "is required");
        if ((errors?.Count ?? 0) != before)
        {
            return null;
        }

        if (passedCount + failedCount + skippedCount != total)
        {
            Add(ref errors, "counts", "passed + failed + skipped must equal total");
            return null;
        }

        return new RunCounts(total!.Value, passedCount!.Value, failedCount!.Value, skippedCount!.Value);
    }

    private static TestCaseSet? ReadTests(ref Utf8JsonReader reader, TestCaseLimits limits, ref List<FieldError>? errors)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            Add(ref errors, "tests", "must be an array of test cases");
            reader.Skip();
            return null;
        }

        using var builder = new TestCaseSetBuilder(limits);
        var index = 0;
        var failures = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var problem = ReadTestCase(ref reader, builder, out var field);
            if (problem is not null && ++failures <= MaxTestErrors)
            {
                Add(ref errors, field is null ? $"tests[{index}]" : $"tests[{index}].{field}", problem);
            }

            index++;
        }

        if (failures > MaxTestErrors)
        {
            Add(ref errors, "tests", $"{failures - MaxTestErrors} more test cases are invalid");
        }

        return failures == 0 ? builder.Build() : null;
    }

    /// <summary>Reads one test case object; returns the first problem with it (and which field), or null.</summary>
    private static string? ReadTestCase(ref Utf8JsonReader reader, TestCaseSetBuilder builder, out string? field)
    {
        field = null;
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return "must be an object {name, suite, status, duration_ms, ...}";
        }

        string? name = null, suite = null, file = null, message = null, problem = null, problemField = null;
        TestCaseStatus? status = null;
        long? duration = null, attempt = null;
        var seen = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            int bit;
            string key;
            if (reader.ValueTextEquals(IngestFields.Name)) { bit = 1; key = "name"; }
            else if (reader.ValueTextEquals(IngestFields.Suite)) { bit = 2; key = "suite"; }
            else if (reader.ValueTextEquals(IngestFields.ClassName)) { bit = 2; key = "classname"; }
            else if (reader.ValueTextEquals(IngestFields.File)) { bit = 4; key = "file"; }
            else if (reader.ValueTextEquals(IngestFields.Status)) { bit = 8; key = "status"; }
            else if (reader.ValueTextEquals(IngestFields.DurationMs)) { bit = 16; key = "duration_ms"; }
            else if (reader.ValueTextEquals(IngestFields.Attempt)) { bit = 32; key = "attempt"; }
            else if (reader.ValueTextEquals(IngestFields.FailureMessage)) { bit = 64; key = "failure_message"; }
            else
            {
                problemField ??= NameOf(ref reader);
                problem ??= "is not a known field";
                reader.Read();
                reader.Skip();
                continue;
            }

            reader.Read();
            if ((seen & bit) != 0)
            {
                problemField ??= key;
                problem ??= bit == 2 ? "give suite or classname, not both" : "appears more than once";
                reader.Skip();
                continue;
            }

            seen |= bit;
            var optional = bit is 4 or 64;
            if (optional && reader.TokenType == JsonTokenType.Null)
            {
                continue;
            }

            switch (bit)
            {
                case 8:
                    if (reader.TokenType == JsonTokenType.String && TestCaseStatuses.TryParse(reader.GetString(), out var parsed))
                    {
                        status = parsed;
                    }
                    else
                    {
                        problemField ??= key;
                        problem ??= "must be passed, failed, skipped or error";
                        reader.Skip();
                    }

                    break;
                case 16 or 32:
                    var max = bit == 16 ? IngestFields.MaxDurationMs : TestCaseLimits.MaxAttempt;
                    var min = bit == 16 ? 0 : 1;
                    if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var number) && number >= min && number <= max)
                    {
                        if (bit == 16) duration = number; else attempt = number;
                    }
                    else
                    {
                        problemField ??= key;
                        problem ??= $"must be an integer from {min} to {max}";
                        reader.Skip();
                    }

                    break;
                default:
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        problemField ??= key;
                        problem ??= "must be a string";
                        reader.Skip();
                        break;
                    }

                    var text = reader.GetString()!;
                    switch (bit)
                    {
                        case 1: name = text; break;
                        case 2: suite = text; break;
                        case 4: file = text; break;
                        default: message = text; break;
                    }

                    break;
            }
        }

        if (problem is not null)
        {
            field = problemField;
            return problem;
        }

        if (name is null || status is null || duration is null)
        {
            field = name is null ? "name" : status is null ? "status" : "duration_ms";
            return "is required";
        }

        return builder.TryAdd(suite ?? "", name, file, status.Value, duration.Value, (int?)attempt, message);
    }

    /// <summary>
    /// Copies the unescaped bytes of a string token into <paramref name="scratch"/> and returns how many, or -1
    /// when it does not fit. Short fields only, so the copy is cheaper than reasoning about escapes.
    /// </summary>
    private static int CopyShortString(ref Utf8JsonReader reader, scoped Span<byte> scratch)
    {
        if (!reader.HasValueSequence && !reader.ValueIsEscaped)
        {
            var raw = reader.ValueSpan;
            if (raw.Length > scratch.Length)
            {
                return -1;
            }

            raw.CopyTo(scratch);
            return raw.Length;
        }

        var rawLength = reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length;
        // Unescaping never lengthens a string, and a \uXXXX escape shrinks six bytes to at most three.
        if (rawLength > scratch.Length * 6)
        {
            return -1;
        }

        var wide = new byte[rawLength];
        var written = reader.CopyString(wide);
        if (written > scratch.Length)
        {
            return -1;
        }

        wide.AsSpan(0, written).CopyTo(scratch);
        return written;
    }

    private static string NameOf(ref Utf8JsonReader reader)
    {
        try
        {
            var name = reader.GetString()!;
            return name.Length <= 64 ? name : name[..64] + "...";
        }
        catch (InvalidOperationException)
        {
            return "<invalid UTF-8>";
        }
    }

    private static void Add(ref List<FieldError>? errors, string field, string message) =>
        (errors ??= []).Add(new FieldError(field, message));

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end > 0 ? message[..end] : message.TrimEnd('.');
    }
}
