using System.Text;
using FastIngest.Ingest;

namespace FastIngest.Tests.Ingest;

public sealed class Rfc3339Tests
{
    [Theory]
    [InlineData("2026-01-12T10:00:00Z", "2026-01-12T10:00:00.0000000+00:00")]
    [InlineData("2026-01-12t10:00:00z", "2026-01-12T10:00:00.0000000+00:00")]
    [InlineData("2026-01-12T12:00:00+02:00", "2026-01-12T10:00:00.0000000+00:00")]
    [InlineData("2026-01-12T05:30:00-04:30", "2026-01-12T10:00:00.0000000+00:00")]
    [InlineData("2026-01-12T10:00:00.5Z", "2026-01-12T10:00:00.5000000+00:00")]
    [InlineData("2026-01-12T10:00:00.123456789Z", "2026-01-12T10:00:00.1234567+00:00")]
    [InlineData("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.0000000+00:00")]
    public void ValidTimestampsParseToTheSameInstant(string text, string expected)
    {
        Assert.True(Rfc3339.TryParse(Encoding.ASCII.GetBytes(text), out var value));
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), value);
    }

    [Theory]
    [InlineData("2026-01-12T10:00:00")] // no offset: ambiguous
    [InlineData("2026-01-12 10:00:00Z")]
    [InlineData("2026-13-12T10:00:00Z")]
    [InlineData("2026-02-30T10:00:00Z")]
    [InlineData("2025-02-29T10:00:00Z")]
    [InlineData("2026-01-12T24:00:00Z")]
    [InlineData("2026-01-12T10:60:00Z")]
    [InlineData("2026-01-12T10:00:60Z")]
    [InlineData("2026-01-12T10:00:00.Z")]
    [InlineData("2026-01-12T10:00:00.1234567890Z")]
    [InlineData("2026-01-12T10:00:00+2:00")]
    [InlineData("2026-01-12T10:00:00+24:00")]
    [InlineData("2026-01-12T10:00:00Zjunk")]
    [InlineData("0000-01-01T00:00:00Z")]
    [InlineData("0001-01-01T00:00:00+01:00")]
    [InlineData("12026-01-12T10:00:00Z")]
    [InlineData("")]
    public void InvalidTimestampsAreRejected(string text) => Assert.False(Rfc3339.TryParse(Encoding.ASCII.GetBytes(text), out _));
}
