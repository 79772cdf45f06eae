using System.Text;
using FastIngest.TestCases;

namespace FastIngest.Tests.TestCases;

public sealed class XmlGuardStreamTests
{
    private const int Max = XmlGuardStream.MaxCDataBytes;

    /// <summary>Hands out its bytes in small reads of varying size, so every split point is exercised.</summary>
    private sealed class TricklingStream(byte[] data, int seed) : MemoryStream(data)
    {
        private readonly Random _random = new(seed);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, _random.Next(1, 9))], cancellationToken);
    }

    private static async Task<string> PassThroughAsync(string xml, int seed, int tagLimit = 1 << 20)
    {
        var guard = new XmlGuardStream(new TricklingStream(Encoding.UTF8.GetBytes(xml), seed), tagLimit);
        var output = new MemoryStream();
        var buffer = new byte[64];
        int read;
        while ((read = await guard.ReadAsync(buffer)) > 0)
        {
            output.Write(buffer, 0, read);
        }

        return Encoding.UTF8.GetString(output.ToArray());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task OrdinaryDocumentsPassUnchangedWhateverTheReadSizes(int seed)
    {
        var xml = """
            <?xml version="1.0"?><!-- a > comment -- with ]]> inside? no: --><testsuite name="a > b" x='"'>
            <testcase name="t"><failure message="x"><![CDATA[ a > b ]] c ]]></failure><system-out>te>xt</system-out></testcase>
            <?pi data > more ?></testsuite>
            """;

        Assert.Equal(xml, await PassThroughAsync(xml, seed));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task LongCDataIsCutOnACharacterBoundaryAndStaysWellFormed(int seed)
    {
        var content = string.Concat(Enumerable.Repeat("é>]", Max)); // 4 bytes per repeat, with '>' and ']' inside
        var xml = $"<a><![CDATA[{content}]]><b/></a>";

        var output = await PassThroughAsync(xml, seed);

        Assert.StartsWith("<a><![CDATA[é>]", output, StringComparison.Ordinal);
        Assert.EndsWith("]]><b/></a>", output, StringComparison.Ordinal);
        var kept = Encoding.UTF8.GetByteCount(output) - Encoding.UTF8.GetByteCount("<a><![CDATA[]]><b/></a>");
        Assert.InRange(kept, Max - 16, Max);
        System.Xml.Linq.XDocument.Parse(output); // still a well-formed document
    }

    [Fact]
    public async Task TooLongTagFailsEvenWithQuotedAngleBrackets()
    {
        var xml = "<testsuite " + string.Concat(Enumerable.Range(0, 1000).Select(i => $"a{i}=\">\" ")) + "/>";

        var error = await Assert.ThrowsAsync<JUnitFormatException>(() => PassThroughAsync(xml, 1, tagLimit: 4096));
        Assert.Contains("a tag is longer than 4096 bytes", error.Message, StringComparison.Ordinal);
    }
}
