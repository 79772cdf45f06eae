using FastIngest.Auth;

namespace FastIngest.Tests.Infrastructure;

/// <summary>Well-formed tokens an attacker who knows the format could build (a correct checksum included).</summary>
public static class ForgedTokens
{
    private const string Base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    /// <summary>Appends the checksum the format expects to a token body.</summary>
    public static string WithChecksum(string withoutChecksum)
    {
        var crc = System.IO.Hashing.Crc32.HashToUInt32(System.Text.Encoding.ASCII.GetBytes(withoutChecksum));
        Span<char> tail = stackalloc char[ApiTokenFormat.ChecksumLength];
        for (var i = tail.Length - 1; i >= 0; i--)
        {
            tail[i] = Base62[(int)(crc % 62)];
            crc /= 62;
        }

        var token = withoutChecksum + new string(tail);
        Assert.True(ApiTokenFormat.IsWellFormed(token, out _), $"not well-formed: {token}");
        return token;
    }

    /// <summary>The token's real id and scope with another (seeded random) secret: one guess for that id.</summary>
    public static string WithOtherSecret(string token, int seed)
    {
        var random = new Random(seed);
        var secret = new string(Enumerable.Range(0, ApiTokenFormat.SecretLength).Select(_ => Base62[random.Next(62)]).ToArray());
        return WithChecksum(token[..(ApiTokenFormat.PrefixLength + ApiTokenFormat.IdLength)] + secret);
    }
}
