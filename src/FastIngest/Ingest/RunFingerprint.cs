using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using FastIngest.Storage;

namespace FastIngest.Ingest;

/// <summary>The content hash stored with every run: equal fingerprints make a retry, unequal ones a conflict.</summary>
public static class RunFingerprint
{
    /// <summary>
    /// XxHash128 over the canonical content (not the raw body), so key order, whitespace, escapes and the
    /// timestamp's offset do not make a retry look like a conflict.
    /// </summary>
    /// <remarks>
    /// Runs without test cases hash exactly as they did before test cases existed, so a retry of a run stored
    /// by an older version is still recognised. <paramref name="utcTicks"/> is <see cref="long.MinValue"/> when
    /// the server chose the timestamp (a JUnit upload without one), so a retry that arrives later still matches.
    /// </remarks>
    public static UInt128 Compute(bool passed, long durationMs, long utcTicks, string? branch, string? commitSha, RunCounts? counts,
        UInt128? tests = null)
    {
        Span<byte> buffer = stackalloc byte[1 + 8 + 8 + 4 + (IngestFields.MaxBranchLength * 3) + 4 + IngestFields.MaxCommitShaLength + 1 + 32 + 17];
        var at = 0;
        buffer[at++] = passed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt64LittleEndian(buffer[at..], durationMs);
        at += 8;
        BinaryPrimitives.WriteInt64LittleEndian(buffer[at..], utcTicks);
        at += 8;
        at += WriteText(buffer[at..], branch);
        at += WriteText(buffer[at..], commitSha);
        if (counts is { } c)
        {
            buffer[at++] = 1;
            BinaryPrimitives.WriteInt64LittleEndian(buffer[at..], c.Total);
            BinaryPrimitives.WriteInt64LittleEndian(buffer[(at + 8)..], c.Passed);
            BinaryPrimitives.WriteInt64LittleEndian(buffer[(at + 16)..], c.Failed);
            BinaryPrimitives.WriteInt64LittleEndian(buffer[(at + 24)..], c.Skipped);
            at += 32;
        }
        else
        {
            buffer[at++] = 0;
        }

        if (tests is { } testsFingerprint)
        {
            buffer[at++] = 1;
            BinaryPrimitives.WriteUInt128LittleEndian(buffer[at..], testsFingerprint);
            at += 16;
        }

        return XxHash128.HashToUInt128(buffer[..at]);
    }

    /// <summary>
    /// Writes text as a length prefix and its UTF-8 bytes (-1 for null), so ("ab","c") and ("a","bc") never hash
    /// alike; returns the bytes written. The caller sizes <paramref name="destination"/> for the longest text.
    /// </summary>
    internal static int WriteText(Span<byte> destination, string? text)
    {
        if (text is null)
        {
            BinaryPrimitives.WriteInt32LittleEndian(destination, -1);
            return 4;
        }

        var length = Encoding.UTF8.GetBytes(text, destination[4..]);
        BinaryPrimitives.WriteInt32LittleEndian(destination, length);
        return 4 + length;
    }
}
