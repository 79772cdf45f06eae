namespace FastIngest.Ingest;

/// <summary>
/// Parses RFC 3339 date-times (<c>2026-01-12T10:00:00.123Z</c>, <c>...+02:00</c>) from UTF-8 without
/// allocating. An offset is required: a timestamp without one is ambiguous and refused.
/// </summary>
public static class Rfc3339
{
    public static bool TryParse(ReadOnlySpan<byte> text, out DateTimeOffset value)
    {
        value = default;
        // yyyy-MM-ddTHH:mm:ss is 19 bytes; the shortest valid form adds "Z".
        if (text.Length < 20 || text.Length > 40
            || text[4] != '-' || text[7] != '-' || (text[10] | 0x20) != 't' || text[13] != ':' || text[16] != ':')
        {
            return false;
        }

        if (!TryDigits(text, 0, 4, out var year) || !TryDigits(text, 5, 2, out var month) || !TryDigits(text, 8, 2, out var day)
            || !TryDigits(text, 11, 2, out var hour) || !TryDigits(text, 14, 2, out var minute) || !TryDigits(text, 17, 2, out var second))
        {
            return false;
        }

        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month)
            || hour > 23 || minute > 59 || second > 59)
        {
            return false;
        }

        var i = 19;
        long fractionTicks = 0;
        if (text[i] == '.')
        {
            i++;
            var start = i;
            var scale = TimeSpan.TicksPerSecond;
            while (i < text.Length && (uint)(text[i] - '0') <= 9)
            {
                scale /= 10; // digits past the seventh are below a tick and are dropped
                fractionTicks += (text[i] - '0') * scale;
                i++;
            }

            if (i == start || i - start > 9)
            {
                return false;
            }
        }

        if (i >= text.Length)
        {
            return false;
        }

        TimeSpan offset;
        if ((text[i] | 0x20) == 'z' && i == text.Length - 1)
        {
            offset = TimeSpan.Zero;
        }
        else if ((text[i] == '+' || text[i] == '-') && text.Length - i == 6 && text[i + 3] == ':'
            && TryDigits(text, i + 1, 2, out var offsetHours) && TryDigits(text, i + 4, 2, out var offsetMinutes)
            && offsetHours <= 23 && offsetMinutes <= 59)
        {
            offset = new TimeSpan(offsetHours, offsetMinutes, 0);
            if (text[i] == '-')
            {
                offset = -offset;
            }
        }
        else
        {
            return false;
        }

        var local = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Unspecified).AddTicks(fractionTicks);
        var utcTicks = local.Ticks - offset.Ticks;
        if (utcTicks < DateTimeOffset.MinValue.UtcTicks || utcTicks > DateTimeOffset.MaxValue.UtcTicks)
        {
            return false;
        }

        value = new DateTimeOffset(utcTicks, TimeSpan.Zero);
        return true;
    }

    private static bool TryDigits(ReadOnlySpan<byte> text, int start, int count, out int value)
    {
        value = 0;
        for (var i = start; i < start + count; i++)
        {
            var digit = (uint)(text[i] - '0');
            if (digit > 9)
            {
                return false;
            }

            value = (value * 10) + (int)digit;
        }

        return true;
    }
}
