using System.Text;
using System.Xml;
using CsCheck;
using FastIngest.TestCases;

namespace FastIngest.Tests.Hostile;

/// <summary>
/// Mutated JUnit reports against the streaming reader: whatever the bytes, it either reads a report or says what
/// is wrong (an <see cref="XmlException"/> or a <see cref="JUnitFormatException"/>, both answered with 400),
/// never anything else, which would be a 500.
/// </summary>
public sealed class JUnitPropertyTests
{
    private static readonly string[] s_reports =
        ["surefire.xml", "pytest.xml", "jest.xml", "go-junit-report.xml", "nested-nunit.xml"];

    private static readonly byte[][] s_bytes = s_reports
        .Select(f => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "TestCases", "Reports", f)))
        .ToArray();

    private static readonly string[] s_elements =
        ["testsuites", "testsuite", "testcase", "failure", "error", "skipped", "flakyFailure", "rerunError", "system-out", "properties", "x"];

    private static readonly string[] s_attributes =
        ["", " name=\"n\"", " time=\"1.5\"", " time=\"-3\"", " time=\"1,0.0\"", " classname=\"c\"", " message=\"m\"",
            " timestamp=\"2026-01-12T10:00:00\"", " time=\"1e400\""];

    private static void ReadsOrExplains(byte[] bytes)
    {
        try
        {
            JUnitXmlReader.ReadAsync(new MemoryStream(bytes), new TestCaseLimits { MaxTestCases = 50 }).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is XmlException or JUnitFormatException)
        {
        }
    }

    [Fact]
    public void MutatedReportsAreReadOrRefusedWithAReason() =>
        Gen.Select(Gen.Int[0, s_bytes.Length - 1], Gen.Int[0, 1_000_000], Gen.Byte, Gen.Int[0, 2], Gen.Int[1, 8]).Sample(
            (report, position, value, kind, repeat) =>
            {
                var bytes = s_bytes[report].ToList();
                for (var i = 0; i < repeat; i++)
                {
                    var at = (position + (i * 7919)) % (bytes.Count + 1);
                    switch (kind)
                    {
                        case 0 when at < bytes.Count: bytes[at] = value; break;
                        case 1: bytes.Insert(at, value); break;
                        default: if (at < bytes.Count) bytes.RemoveAt(at); break;
                    }
                }

                ReadsOrExplains([.. bytes]);
            }, iter: 5000);

    [Fact]
    public void GeneratedElementSoupIsReadOrRefusedWithAReason()
    {
        var element = Gen.Int[0, s_elements.Length - 1].Select(i => s_elements[i]);
        var attribute = Gen.Int[0, s_attributes.Length - 1].Select(i => s_attributes[i]);
        var node = Gen.Select(element, attribute, Gen.Bool, (e, a, close) => close ? $"<{e}{a}/>" : $"<{e}{a}>");
        Gen.Select(node.Array[1, 30], Gen.Int[0, 30]).Sample((nodes, closers) =>
        {
            var xml = new StringBuilder(string.Concat(nodes));
            for (var i = 0; i < closers; i++)
            {
                xml.Append("</testsuite>");
            }

            ReadsOrExplains(Encoding.UTF8.GetBytes(xml.ToString()));
        }, iter: 5000);
    }
}
