using System.Buffers;
using System.Text;
using CsCheck;
using FastIngest.Ingest;

namespace FastIngest.Tests.Hostile;

/// <summary>Generated and mutated bodies against the hand-written parser: it must never throw or hang.</summary>
public sealed class ParserPropertyTests
{
    private static readonly Gen<string> s_runId = Gen.String[Gen.Char["abcXYZ019._:/-"], 1, 128];
    private static readonly Gen<string> s_timestamp =
        Gen.Select(Gen.Int[1970, 2100], Gen.Int[1, 12], Gen.Int[1, 28], Gen.Int[0, 23], Gen.Int[0, 59], Gen.Int[-12, 12],
            (y, mo, d, h, mi, off) => $"{y:0000}-{mo:00}-{d:00}T{h:00}:{mi:00}:07{(off == 0 ? "Z" : $"{(off < 0 ? '-' : '+')}{Math.Abs(off):00}:00")}");

    private static readonly Gen<string> s_validBody =
        Gen.Select(s_runId, Gen.Bool, Gen.Long[0, 604_800_000], s_timestamp,
            (runId, passed, duration, timestamp) =>
                $$"""{"run_id":"{{runId}}","status":"{{(passed ? "passed" : "failed")}}","duration_ms":{{duration}},"timestamp":"{{timestamp}}"}""");

    private static (bool Ok, bool HasRun, bool HasErrors) Parse(byte[] body)
    {
        var ok = IngestBodyParser.TryParse(new ReadOnlySequence<byte>(body), 1, 1, out var run, out var errors);
        return (ok, run is not null, errors is { Count: > 0 });
    }

    [Fact]
    public void ValidBodiesAlwaysParseToTheirValues() =>
        Gen.Select(s_runId, Gen.Bool, Gen.Long[0, 604_800_000], s_timestamp).Sample((runId, passed, duration, timestamp) =>
        {
            var body = $$"""{"run_id":"{{runId}}","status":"{{(passed ? "passed" : "failed")}}","duration_ms":{{duration}},"timestamp":"{{timestamp}}"}""";
            Assert.True(IngestBodyParser.TryParse(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(body)), 1, 1, out var run, out _));
            Assert.Equal(runId, run!.RunId);
            Assert.Equal(passed, run.Passed);
            Assert.Equal(duration, run.DurationMs);
        }, iter: 2000);

    [Fact]
    public void ArbitraryBytesNeverThrowAndGiveExactlyRunOrErrors() =>
        Gen.Byte.Array[0, 400].Sample(bytes =>
        {
            var (ok, hasRun, hasErrors) = Parse(bytes);
            Assert.Equal(ok, hasRun);
            Assert.NotEqual(hasRun, hasErrors);
        }, iter: 20_000);

    [Fact]
    public void MutatedValidBodiesNeverThrow() =>
        Gen.Select(s_validBody, Gen.Int[0, 1000], Gen.Byte, Gen.Int[0, 2]).Sample((body, position, value, kind) =>
        {
            var bytes = Encoding.UTF8.GetBytes(body).ToList();
            var at = position % (bytes.Count + 1);
            switch (kind)
            {
                case 0 when at < bytes.Count: bytes[at] = value; break;
                case 1: bytes.Insert(at, value); break;
                default: if (at < bytes.Count) bytes.RemoveAt(at); break;
            }

            var (ok, hasRun, hasErrors) = Parse([.. bytes]);
            Assert.Equal(ok, hasRun);
            Assert.NotEqual(hasRun, hasErrors);
        }, iter: 20_000);

    [Fact]
    public void GeneratedJsonShapedBodiesNeverThrow()
    {
        var value = Gen.Recursive<string>((depth, self) => depth > 6
            ? Gen.OneOf("1", "-0", "1e999", "\"x\"", "null", "true", "\"\\uD800\"", "123456789012345678901234567890")
            : Gen.Frequency(
                (4, Gen.OneOf("0", "1.5", "\"passed\"", "\"2026-01-12T10:00:00Z\"", "null", "false", "-1")),
                (1, self.Array[0, 4].Select(items => "[" + string.Join(",", items) + "]")),
                (1, Gen.Select(Gen.OneOf("run_id", "status", "duration_ms", "timestamp", "counts", "total", "x", ""), self)
                    .Array[0, 5].Select(pairs => "{" + string.Join(",", pairs.Select(p => $"\"{p.Item1}\":{p.Item2}")) + "}"))));
        value.Sample(text =>
        {
            var (ok, hasRun, hasErrors) = Parse(Encoding.UTF8.GetBytes(text));
            Assert.Equal(ok, hasRun);
            Assert.NotEqual(hasRun, hasErrors);
        }, iter: 10_000);
    }
}
