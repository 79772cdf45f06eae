using System.Buffers.Binary;
using System.Buffers.Text;
using System.IO.Hashing;

namespace FastIngest.Reading;

/// <summary>
/// The opaque keyset cursor of <c>GET /v1/runs</c>: the last row's (timestamp, id), a hash of the filters it was
/// issued for, and a CRC32 over both. A cursor that was edited, truncated, or replayed with other filters is a
/// 400, never a wrong page.
/// </summary>
public static class RunCursor
{
    private const int PayloadLength = 8 + 8 + 4;

    public static string Encode(long timestampMs, long id, uint filterHash)
    {
        Span<byte> bytes = stackalloc byte[PayloadLength + 4];
        BinaryPrimitives.WriteInt64BigEndian(bytes, timestampMs);
        BinaryPrimitives.WriteInt64BigEndian(bytes[8..], id);
        BinaryPrimitives.WriteUInt32BigEndian(bytes[16..], filterHash);
        BinaryPrimitives.WriteUInt32BigEndian(bytes[PayloadLength..], Crc32.HashToUInt32(bytes[..PayloadLength]));
        return Base64Url.EncodeToString(bytes);
    }

    public static bool TryDecode(string text, uint filterHash, out (long TimestampMs, long Id) position)
    {
        position = default;
        Span<byte> bytes = stackalloc byte[PayloadLength + 4];
        int written;
        try
        {
            // Despite its name, TryDecodeFromChars throws on characters outside the alphabet.
            if (text.Length > 64 || !Base64Url.TryDecodeFromChars(text, bytes, out written))
            {
                return false;
            }
        }
        catch (FormatException)
        {
            return false;
        }

        if (written != bytes.Length
            || Crc32.HashToUInt32(bytes[..PayloadLength]) != BinaryPrimitives.ReadUInt32BigEndian(bytes[PayloadLength..])
            || BinaryPrimitives.ReadUInt32BigEndian(bytes[16..]) != filterHash)
        {
            return false;
        }

        position = (BinaryPrimitives.ReadInt64BigEndian(bytes), BinaryPrimitives.ReadInt64BigEndian(bytes[8..]));
        return true;
    }

    public static uint HashFilters(long projectKey, bool? passed, string? branch, long? sinceMs, long? untilMs) =>
        XxHash32.HashToUInt32(System.Text.Encoding.UTF8.GetBytes($"{projectKey}|{passed}|{branch}|{sinceMs}|{untilMs}"));
}
