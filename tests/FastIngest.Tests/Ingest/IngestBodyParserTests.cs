using System.Buffers;
using System.Text;
using FastIngest.Http;
using FastIngest.Ingest;
using FastIngest.Storage;

namespace FastIngest.Tests.Ingest;

public sealed class IngestBodyParserTests
{
    private const string Valid = """{"run_id":"build-123","status":"passed","duration_ms":5000,"timestamp":"2026-01-12T10:00:00Z"}""";

    private static (RunRecord? Run, List<FieldError>? Errors) Parse(byte[] body)
    {
        IngestBodyParser.TryParse(new ReadOnlySequence<byte>(body), projectKey: 7, receivedAtMs: 42, out var run, out var errors);
        return (run, errors);
    }

    private static (RunRecord? Run, List<FieldError>? Errors) Parse(string body) => Parse(Encoding.UTF8.GetBytes(body));

    [Fact]
    public void SeedBodyParsesIntoARun()
    {
        var (run, errors) = Parse(Valid);

        Assert.Null(errors);
        Assert.NotNull(run);
        Assert.Equal(7, run.ProjectKey);
        Assert.Equal("build-123", run.RunId);
        Assert.True(run.Passed);
        Assert.Equal(5000, run.DurationMs);
        Assert.Equal(DateTimeOffset.Parse("2026-01-12T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds(), run.TimestampMs);
        Assert.Null(run.Counts);
    }

    [Fact]
    public void OptionalFieldsAreParsed()
    {
        var (run, errors) = Parse("""
            {"run_id":"ci/main:42.1_x-y","status":"failed","duration_ms":0,"timestamp":"2026-01-12T10:00:00+01:00",
             "branch":"feature/ü-1","commit_sha":"ABCDEF1234567","counts":{"total":10,"passed":7,"failed":2,"skipped":1}}
            """);

        Assert.Null(errors);
        Assert.Equal("ci/main:42.1_x-y", run!.RunId);
        Assert.False(run.Passed);
        Assert.Equal("feature/ü-1", run.Branch);
        Assert.Equal("abcdef1234567", run.CommitSha);
        Assert.Equal(new RunCounts(10, 7, 2, 1), run.Counts);
    }

    [Fact]
    public void EscapedStringsAreUnescapedBeforeValidation()
    {
        var (run, errors) = Parse("""{"run_id":"build\u002D123","status":"pass\u0065d","duration_ms":1,"timestamp":"2026-01-12T10:00:00\u005A"}""");
        Assert.Null(errors);
        Assert.Equal("build-123", run!.RunId);
    }

    [Fact]
    public void EquivalentBodiesHaveTheSameFingerprint()
    {
        var a = Parse(Valid).Run!;
        var b = Parse("""{ "timestamp":"2026-01-12T11:00:00+01:00", "duration_ms":5000, "status":"passed", "run_id":"build-123" }""").Run!;
        Assert.Equal(a.Fingerprint, b.Fingerprint);
    }

    [Theory]
    [InlineData("""{"run_id":"build-123","status":"failed","duration_ms":5000,"timestamp":"2026-01-12T10:00:00Z"}""")]
    [InlineData("""{"run_id":"build-123","status":"passed","duration_ms":5001,"timestamp":"2026-01-12T10:00:00Z"}""")]
    [InlineData("""{"run_id":"build-123","status":"passed","duration_ms":5000,"timestamp":"2026-01-12T10:00:00.001Z"}""")]
    [InlineData("""{"run_id":"build-123","status":"passed","duration_ms":5000,"timestamp":"2026-01-12T10:00:00Z","branch":"main"}""")]
    [InlineData("""{"run_id":"build-123","status":"passed","duration_ms":5000,"timestamp":"2026-01-12T10:00:00Z","commit_sha":"abcdef1"}""")]
    [InlineData("""{"run_id":"build-123","status":"passed","duration_ms":5000,"timestamp":"2026-01-12T10:00:00Z","counts":{"total":1,"passed":1,"failed":0,"skipped":0}}""")]
    public void AnyContentChangeChangesTheFingerprint(string changed) =>
        Assert.NotEqual(Parse(Valid).Run!.Fingerprint, Parse(changed).Run!.Fingerprint);

    public static TheoryData<string, string[]> InvalidBodies => new()
    {
        { "{}", ["run_id", "status", "duration_ms", "timestamp"] },
        { """{"run_id":"","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z"}""", ["run_id"] },
        { """{"run_id":"has space","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z"}""", ["run_id"] },
        { """{"run_id":"semi;colon","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z"}""", ["run_id"] },
        { "{\"run_id\":\"" + new string('a', 129) + "\",\"status\":\"passed\",\"duration_ms\":1,\"timestamp\":\"2026-01-12T10:00:00Z\"}", ["run_id"] },
        { """{"run_id":123,"status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z"}""", ["run_id"] },
        { """{"run_id":"a","status":"PASSED","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z"}""", ["status"] },
        { """{"run_id":"a","status":null,"duration_ms":1,"timestamp":"2026-01-12T10:00:00Z"}""", ["status"] },
        { """{"run_id":"a","status":"passed","duration_ms":1.5,"timestamp":"2026-01-12T10:00:00Z"}""", ["duration_ms"] },
        { """{"run_id":"a","status":"passed","duration_ms":1e3,"timestamp":"2026-01-12T10:00:00Z"}""", ["duration_ms"] },
        { """{"run_id":"a","status":"passed","duration_ms":-1,"timestamp":"2026-01-12T10:00:00Z"}""", ["duration_ms"] },
        { """{"run_id":"a","status":"passed","duration_ms":604800001,"timestamp":"2026-01-12T10:00:00Z"}""", ["duration_ms"] },
        { """{"run_id":"a","status":"passed","duration_ms":99999999999999999999999,"timestamp":"2026-01-12T10:00:00Z"}""", ["duration_ms"] },
        { """{"run_id":"a","status":"passed","duration_ms":"5","timestamp":"2026-01-12T10:00:00Z"}""", ["duration_ms"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12 10:00"}""", ["timestamp"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":1736676000}""", ["timestamp"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","duration":5}""", ["duration"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","run_id":"b"}""", ["run_id"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","branch":""}""", ["branch"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","branch":"a\nb"}""", ["branch"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","commit_sha":"xyz1234"}""", ["commit_sha"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","commit_sha":"abc"}""", ["commit_sha"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","counts":{"total":3,"passed":1,"failed":1,"skipped":0}}""", ["counts"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","counts":{"total":1,"passed":1,"failed":0}}""", ["counts.skipped"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","counts":{"total":1,"passed":1,"failed":0,"skipped":0,"flaky":0}}""", ["counts.flaky"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","counts":{"total":-1,"passed":1,"failed":0,"skipped":0}}""", ["counts.total"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","counts":[1,2]}""", ["counts"] },
        { """{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","extra":{"deep":[1,{"x":2}]}}""", ["extra"] },
        { "[]", [""] },
        { "\"run\"", [""] },
        { "null", [""] },
    };

    [Theory]
    [MemberData(nameof(InvalidBodies))]
    public void InvalidBodiesNameEveryBadField(string body, string[] fields)
    {
        var (run, errors) = Parse(body);

        Assert.Null(run);
        Assert.NotNull(errors);
        Assert.Equal(fields.Order(), errors.Select(e => e.Field).Distinct().Order());
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("{\"run_id\":")]
    [InlineData("{\"run_id\":\"a\",}")]
    [InlineData("{'run_id':'a'}")]
    [InlineData("{\"run_id\":\"a\"} {}")]
    [InlineData("{\"run_id\":\"a\" /* comment */}")]
    [InlineData("{\"counts\":{\"total\":{\"a\":{\"b\":{\"c\":1}}}}}")]
    [InlineData("{\"run_id\":\"\\uD800\"}")]
    [InlineData("{\"run_id\":\"a\\q\"}")]
    public void MalformedJsonIsOneBodyLevelError(string body)
    {
        var (run, errors) = Parse(body);

        Assert.Null(run);
        var error = Assert.Single(errors!);
        Assert.Equal("", error.Field);
    }

    [Fact]
    public void EveryTruncationOfAValidBodyIsRejectedWithoutThrowing()
    {
        var bytes = Encoding.UTF8.GetBytes(Valid);
        for (var length = 0; length < bytes.Length; length++)
        {
            var (run, errors) = Parse(bytes[..length]);
            Assert.Null(run);
            Assert.NotEmpty(errors!);
        }
    }

    [Fact]
    public void EverySingleByteCorruptionIsRejectedOrStillValidWithoutThrowing()
    {
        var bytes = Encoding.UTF8.GetBytes(Valid);
        foreach (var replacement in new byte[] { 0x00, (byte)'"', (byte)'{', (byte)'}', (byte)'\\', 0xFF, 0xC3, (byte)'9' })
        {
            for (var i = 0; i < bytes.Length; i++)
            {
                var corrupted = (byte[])bytes.Clone();
                corrupted[i] = replacement;
                var (run, errors) = Parse(corrupted);
                Assert.True(run is not null ^ errors is not null);
            }
        }
    }

    [Fact]
    public void InvalidUtf8InStringsIsRejected()
    {
        var prefix = Encoding.UTF8.GetBytes("""{"run_id":"a","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z","branch":"x""");
        byte[] body = [.. prefix, 0xC3, 0x28, .. "\"}"u8];
        var (run, errors) = Parse(body);
        Assert.Null(run);
        Assert.NotEmpty(errors!);
    }

    [Fact]
    public void InvalidUtf8InRunIdIsRejected()
    {
        byte[] body = [.. "{\"run_id\":\"a"u8, 0xFF, 0xFE, .. "\",\"status\":\"passed\",\"duration_ms\":1,\"timestamp\":\"2026-01-12T10:00:00Z\"}"u8];
        var (run, errors) = Parse(body);
        Assert.Null(run);
        Assert.Contains(errors!, e => e.Field is "run_id" or "");
    }

    [Fact]
    public void BodySplitAcrossSegmentsParsesTheSame()
    {
        var bytes = Encoding.UTF8.GetBytes(Valid);
        for (var split = 1; split < bytes.Length; split++)
        {
            var sequence = Segments.Create(bytes[..split], bytes[split..]);
            Assert.True(IngestBodyParser.TryParse(sequence, 1, 1, out var run, out _), $"split at {split}");
            Assert.Equal("build-123", run!.RunId);
        }
    }

    private sealed class Segments : ReadOnlySequenceSegment<byte>
    {
        private Segments(byte[] data) => Memory = data;

        public static ReadOnlySequence<byte> Create(byte[] first, byte[] second)
        {
            var head = new Segments(first);
            var tail = new Segments(second) { RunningIndex = first.Length };
            head.Next = tail;
            return new ReadOnlySequence<byte>(head, 0, tail, second.Length);
        }
    }
}
