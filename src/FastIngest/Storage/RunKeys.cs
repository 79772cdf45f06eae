namespace FastIngest.Storage;

/// <summary>
/// An ascending list of run keys as varints of the gaps between them: a test that runs in every run of a day costs
/// one byte per run, one that runs in one run of 300 about two.
/// </summary>
public static class RunKeys
{
    public static byte[] Encode(IReadOnlyList<long> ascending)
    {
        var output = new List<byte>(ascending.Count * 2);
        long previous = 0;
        foreach (var key in ascending)
        {
            var gap = (ulong)(key - previous);
            while (gap >= 0x80)
            {
                output.Add((byte)(gap | 0x80));
                gap >>= 7;
            }

            output.Add((byte)gap);
            previous = key;
        }

        return [.. output];
    }

    public static List<long> Decode(ReadOnlySpan<byte> encoded)
    {
        var keys = new List<long>();
        long previous = 0;
        ulong gap = 0;
        var shift = 0;
        foreach (var b in encoded)
        {
            gap |= (ulong)(b & 0x7F) << shift;
            if (b >= 0x80)
            {
                shift += 7;
                if (shift > 63)
                {
                    throw new InvalidDataException("A stored list of run keys is corrupt.");
                }

                continue;
            }

            previous += (long)gap;
            keys.Add(previous);
            gap = 0;
            shift = 0;
        }

        if (shift != 0)
        {
            throw new InvalidDataException("A stored list of run keys is truncated.");
        }

        return keys;
    }
}
