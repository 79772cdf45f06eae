using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using FastIngest.Storage;

namespace FastIngest.Reading;

/// <summary>
/// The opaque keyset cursors of the paged reads. A cursor is a position (two numbers) encrypted with AES (one
/// block, so the internal ids it carries reveal nothing, such as how many runs all tenants stored), followed by
/// an HMAC-SHA256 tag over that block and the filters it was issued for (project, run, query). An edited,
/// forged, truncated or re-used-with-other-filters cursor fails the tag: a 400, never a wrong page.
/// Both keys derive from the server's cursor secret in the database, so cursors survive a restart.
/// </summary>
public sealed class PagingCursors : IDisposable
{
    private const int BlockLength = 16;
    private const int TagLength = 16;
    private const int CursorLength = BlockLength + TagLength;

    /// <summary>Base64url of 32 bytes is 43 characters; anything longer is not a cursor.</summary>
    public const int MaxTextLength = 43;

    private readonly Aes _aes;
    private readonly byte[] _macKey;
    private readonly Lock _aesLock = new();

    /// <summary>Created before the server takes requests (<see cref="FastIngestServer"/>), so the key is read once, at startup.</summary>
    public PagingCursors(ITenantStore tenants)
        : this(tenants.CursorKeyAsync().AsTask().GetAwaiter().GetResult())
    {
    }

    internal PagingCursors(byte[] secret)
    {
        // Two independent keys from one secret, so the cipher and the tag never share a key.
        _macKey = HMACSHA256.HashData(secret, "fastingest cursor tag"u8);
        _aes = Aes.Create();
        _aes.Key = HMACSHA256.HashData(secret, "fastingest cursor cipher"u8)[..16];
    }

    public string Encode(long first, long second, string filters)
    {
        Span<byte> plain = stackalloc byte[BlockLength];
        BinaryPrimitives.WriteInt64BigEndian(plain, first);
        BinaryPrimitives.WriteInt64BigEndian(plain[8..], second);
        Span<byte> cursor = stackalloc byte[CursorLength];
        lock (_aesLock)
        {
            _aes.EncryptEcb(plain, cursor[..BlockLength], PaddingMode.None);
        }

        Tag(cursor[..BlockLength], filters, cursor[BlockLength..]);
        return Base64Url.EncodeToString(cursor);
    }

    public bool TryDecode(string text, string filters, out (long First, long Second) position)
    {
        position = default;
        Span<byte> cursor = stackalloc byte[CursorLength];
        int written;
        try
        {
            // Despite its name, TryDecodeFromChars throws on characters outside the alphabet.
            if (text.Length != MaxTextLength || !Base64Url.TryDecodeFromChars(text, cursor, out written))
            {
                return false;
            }
        }
        catch (FormatException)
        {
            return false;
        }

        Span<byte> expected = stackalloc byte[TagLength];
        Tag(cursor[..BlockLength], filters, expected);
        if (written != CursorLength || !CryptographicOperations.FixedTimeEquals(expected, cursor[BlockLength..]))
        {
            return false;
        }

        Span<byte> plain = stackalloc byte[BlockLength];
        lock (_aesLock)
        {
            _aes.DecryptEcb(cursor[..BlockLength], plain, PaddingMode.None);
        }

        position = (BinaryPrimitives.ReadInt64BigEndian(plain), BinaryPrimitives.ReadInt64BigEndian(plain[8..]));
        return true;
    }

    public void Dispose() => _aes.Dispose();

    private void Tag(ReadOnlySpan<byte> block, string filters, Span<byte> destination)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _macKey);
        hmac.AppendData(block);
        hmac.AppendData(Encoding.UTF8.GetBytes(filters));
        Span<byte> full = stackalloc byte[32];
        hmac.GetHashAndReset(full);
        full[..TagLength].CopyTo(destination);
    }
}
