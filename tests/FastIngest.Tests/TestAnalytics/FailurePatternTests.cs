using FastIngest.Storage;
using FastIngest.TestAnalytics;

namespace FastIngest.Tests.TestAnalytics;

public sealed class FailurePatternTests
{
    [Theory]
    [InlineData("expected 200 but was 500", "expected 404 but was 503")]
    [InlineData("timeout after 3012.5 ms", "timeout after 17 ms")]
    [InlineData("object at 0x7ffee4b2c8a0 is null", "object at 0x10a3 is null")]
    [InlineData("request 3f2a9c1e-77b4-4d1a-9a0e-2b9c61f0e5aa failed", "request 00000000-0000-4000-8000-000000000000 failed")]
    [InlineData("at 2026-11-26T01:02:03.123Z the lock was held", "at 2025-01-01 23:59:59 the lock was held")]
    [InlineData("cannot open /tmp/pytest-of-ci/pytest-12/test_a0/data.db", "cannot open /tmp/tmpk2j3h4/data.db")]
    [InlineData("commit deadbeef1234 missing", "commit 0123abcd9876 missing")]
    [InlineData("two  spaces\nand a line", "two spaces and a line")]
    public void MessagesThatDifferOnlyInWhatChangesFromRunToRunShareAPattern(string one, string other) =>
        Assert.Equal(FailurePattern.Of(one), FailurePattern.Of(other));

    [Theory]
    [InlineData("expected 200 but was 500", "NullPointerException")]
    [InlineData("connection refused", "connection reset")]
    [InlineData("AssertionError: lists differ", "AssertionError: sets differ")]
    public void DifferentErrorsKeepDifferentPatterns(string one, string other) =>
        Assert.NotEqual(FailurePattern.Fingerprint(FailurePattern.Of(one)), FailurePattern.Fingerprint(FailurePattern.Of(other)));

    [Fact]
    public void APatternIsBoundedAndAMessageCutShortForBudgetStaysInItsGroup()
    {
        var full = "TimeoutError: waited 30000 ms for " + string.Concat(Enumerable.Repeat("service-dependency ", 200));
        var cut = full[..255] + "…"; // what a run whose message budget is spent keeps

        Assert.True(FailurePattern.Of(full).Length <= FailurePattern.MaxPatternLength);
        Assert.Equal(FailurePattern.Of(full), FailurePattern.Of(cut));
    }
}

public sealed class SparseHistogramTests
{
    [Fact]
    public void EncodedHistogramsMergeToTheSamePercentilesAsTheDenseOne()
    {
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var dense = new byte[DurationHistogram.BlobLength];
        var merged = new SparseHistogram();
        long max = 0;
        for (var day = 0; day < 7; day++)
        {
            var sparse = new SparseHistogram();
            for (var i = 0; i < random.Next(1, 200); i++)
            {
                var duration = (long)Math.Pow(10, random.NextDouble() * 6);
                sparse.Add(duration);
                DurationHistogram.Add(dense, duration);
                max = Math.Max(max, duration);
            }

            merged.Merge(sparse.Encode());
        }

        foreach (var p in new[] { 1.0, 50, 95, 99, 100 })
        {
            Assert.True(DurationHistogram.Percentile(dense, merged.Total, p, max) == merged.Percentile(p, max), $"p{p} differs (seed {seed})");
        }
    }

    [Fact]
    public void ATruncatedHistogramIsRefusedNotMisread()
    {
        var histogram = new SparseHistogram();
        histogram.Add(1_000_000);
        var encoded = histogram.Encode();

        Assert.Throws<InvalidDataException>(() => new SparseHistogram().Merge(encoded.AsSpan(0, encoded.Length - 1)));
    }
}

public sealed class RunKeysTests
{
    [Theory]
    [InlineData(new long[] { })]
    [InlineData(new long[] { 1 })]
    [InlineData(new long[] { 5, 6, 7, 300, 70_000, 9_000_000_000 })]
    public void AscendingKeysRoundTrip(long[] keys) => Assert.Equal(keys, RunKeys.Decode(RunKeys.Encode(keys)));

    [Fact]
    public void ATruncatedListIsRefused() =>
        Assert.Throws<InvalidDataException>(() => RunKeys.Decode(RunKeys.Encode([1, 70_000]).AsSpan(0, 2)));
}
