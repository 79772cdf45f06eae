using System.IO.Hashing;
using System.Security.Cryptography;

namespace FastIngest.Auth;

/// <summary>
/// The token text: <c>fi{scope}_{id:12}{secret:43}{crc:6}</c>, 65 characters, all base62 after the prefix.
/// <list type="bullet">
/// <item><c>{scope}</c> is one of <c>a o i r</c> (admin, org, ingest, read).</item>
/// <item><c>{id}</c> is the public token id (about 71 random bits), the key of a unique index.</item>
/// <item><c>{secret}</c> is 43 uniformly random base62 characters: 62^43 &gt; 2^256.</item>
/// <item><c>{crc}</c> is the CRC32 of everything before it, base62, so typos and most forgeries are refused
/// without touching the database, and secret scanners can confirm a hit offline.</item>
/// </list>
/// Scanner pattern: <c>\bfi[aoir]_[0-9A-Za-z]{61}\b</c>.
/// </summary>
public static class ApiTokenFormat
{
    public const int IdLength = 12;
    public const int SecretLength = 43;
    public const int ChecksumLength = 6;
    public const int PrefixLength = 4;
    public const int Length = PrefixLength + IdLength + SecretLength + ChecksumLength;

    /// <summary>A fresh token of the given scope: its text (shown once) and its public id.</summary>
    public static (string Token, string Id) Generate(TokenScope scope)
    {
        Span<char> token = stackalloc char[Length];
        token[0] = 'f';
        token[1] = 'i';
        token[2] = scope.ToMarker();
        token[3] = '_';
        RandomNumberGenerator.GetItems(Base62.Alphabet, token.Slice(PrefixLength, IdLength + SecretLength));
        Base62.EncodeFixed(Checksum(token[..^ChecksumLength]), token[^ChecksumLength..]);
        var text = new string(token);
        return (text, text.Substring(PrefixLength, IdLength));
    }

    /// <summary>
    /// Checks shape and checksum only: no allocation, no I/O. A token that fails here never reaches the
    /// database or Argon2.
    /// </summary>
    public static bool IsWellFormed(ReadOnlySpan<char> token, out TokenScope scope)
    {
        scope = default;
        if (token.Length != Length || token[0] != 'f' || token[1] != 'i' || token[3] != '_'
            || !TokenScopeNames.TryFromMarker(token[2], out scope))
        {
            return false;
        }

        foreach (var c in token[PrefixLength..])
        {
            if (!Base62.IsDigit(c))
            {
                return false;
            }
        }

        Span<char> expected = stackalloc char[ChecksumLength];
        Base62.EncodeFixed(Checksum(token[..^ChecksumLength]), expected);
        return expected.SequenceEqual(token[^ChecksumLength..]);
    }

    public static ReadOnlySpan<char> IdOf(ReadOnlySpan<char> wellFormedToken) => wellFormedToken.Slice(PrefixLength, IdLength);

    public static ReadOnlySpan<char> SecretOf(ReadOnlySpan<char> wellFormedToken) =>
        wellFormedToken.Slice(PrefixLength + IdLength, SecretLength);

    private static uint Checksum(ReadOnlySpan<char> body)
    {
        // Every character is ASCII, so hashing the UTF-16 code units' low bytes equals hashing the UTF-8 text.
        Span<byte> ascii = stackalloc byte[Length];
        for (var i = 0; i < body.Length; i++)
        {
            ascii[i] = (byte)body[i];
        }

        return Crc32.HashToUInt32(ascii[..body.Length]);
    }
}
