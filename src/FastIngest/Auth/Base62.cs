namespace FastIngest.Auth;

/// <summary>The 62 URL- and shell-safe characters tokens are written in.</summary>
internal static class Base62
{
    public const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    public static bool IsDigit(char c) => (uint)(c - '0') <= 9 || (uint)(c - 'A') <= 25 || (uint)(c - 'a') <= 25;

    /// <summary>Writes <paramref name="value"/> into all of <paramref name="destination"/>, left-padded with '0'.</summary>
    public static void EncodeFixed(ulong value, Span<char> destination)
    {
        for (var i = destination.Length - 1; i >= 0; i--)
        {
            destination[i] = Alphabet[(int)(value % 62)];
            value /= 62;
        }
    }
}
