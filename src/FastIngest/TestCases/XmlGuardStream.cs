namespace FastIngest.TestCases;

/// <summary>
/// Sits between the request body and <see cref="System.Xml.XmlReader"/> and keeps the reader's memory bounded
/// where the reader itself does not:
/// <list type="bullet">
/// <item>Any tag (from <c>&lt;</c> to its <c>&gt;</c>, quotes respected) longer than a limit fails the upload.
/// The reader holds a start tag with all its attributes, at hundreds of bytes per attribute: 60 MB of
/// <c>a1="" a2="" ...</c> took 1.5 GB and 80 s.</item>
/// <item>CDATA sections are cut to <see cref="MaxCDataBytes"/>: the reader materialises a CDATA section whole
/// (300 MB of system-out in one section took 1.3 GB), and nothing past a failure message's first 4,096
/// characters is kept anyway. The cut keeps the document well-formed.</item>
/// </list>
/// Plain text and comments are streamed by the reader and pass untouched.
/// </summary>
public sealed class XmlGuardStream : ReadOnlyFilterStream
{
    /// <summary>CDATA bytes passed on per section; the rest is dropped before the reader sees it.</summary>
    public const int MaxCDataBytes = 64 * 1024;

    private static readonly byte[] s_cdataEnd = "]]>"u8.ToArray();
    private readonly Stream _inner;
    private readonly int _limit;
    private int _cdataLength;
    private int _dropFrom;
    private ReadOnlyMemory<byte> _inject;
    private byte[] _leftover = [];
    private int _leftoverStart;
    private State _state;
    private byte _quote;
    private int _tagLength;
    private byte _previous, _beforePrevious;

    public XmlGuardStream(Stream inner, int limit)
    {
        _inner = inner;
        _limit = limit;
    }

    private enum State : byte
    {
        Text,
        Open,        // after '<'
        Bang,        // after "<!"
        BangDash,    // after "<!-"
        Tag,         // inside a tag, counting
        Comment,     // until "-->"
        CData,       // until "]]>"
        CDataDropping, // past MaxCDataBytes, until "]]>"
        Instruction, // until "?>"
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            // A closing "]]>" put in after a cut goes out first; it is already accounted for.
            if (!_inject.IsEmpty)
            {
                var injected = Math.Min(buffer.Length, _inject.Length);
                _inject.Span[..injected].CopyTo(buffer.Span);
                _inject = _inject[injected..];
                return injected;
            }

            // Bytes held back after a cut come before fresh ones; both are still to be scanned.
            int read;
            if (_leftoverStart < _leftover.Length)
            {
                read = Math.Min(buffer.Length, _leftover.Length - _leftoverStart);
                _leftover.AsSpan(_leftoverStart, read).CopyTo(buffer.Span);
                _leftoverStart += read;
            }
            else if ((read = await _inner.ReadAsync(buffer, cancellationToken)) == 0)
            {
                return 0;
            }

            // A read whose every byte was dropped must not look like the end of the stream: go round again.
            if ((read = Scan(buffer.Span[..read])) > 0)
            {
                return read;
            }
        }
    }

    public override int Read(Span<byte> buffer) => throw new NotSupportedException("Read asynchronously: the body is a request stream.");

    /// <summary>Scans a read in place; returns how many of its bytes go on (fewer when a CDATA section was cut).</summary>
    private int Scan(Span<byte> bytes)
    {
        var i = 0;
        while (i < bytes.Length)
        {
            switch (_state)
            {
                case State.Text:
                    // Most bytes are text: jump to the next '<'.
                    var open = bytes[i..].IndexOf((byte)'<');
                    if (open < 0)
                    {
                        return bytes.Length;
                    }

                    i += open + 1;
                    _state = State.Open;
                    continue;
                case State.Open:
                    _state = bytes[i] switch { (byte)'!' => State.Bang, (byte)'?' => StartSkipping(State.Instruction), _ => StartTag() };
                    break;
                case State.Bang:
                    _state = bytes[i] switch { (byte)'-' => State.BangDash, (byte)'[' => StartCData(), _ => StartTag() };
                    break;
                case State.BangDash:
                    _state = bytes[i] == (byte)'-' ? StartSkipping(State.Comment) : StartTag();
                    break;
                case State.CData or State.CDataDropping:
                    if (ScanCData(bytes, ref i) is { } kept)
                    {
                        return kept;
                    }

                    continue;
                case State.Comment or State.Instruction:
                    // Skip to each '>' and check what came before it (possibly in an earlier read).
                    var close = bytes[i..].IndexOf((byte)'>');
                    if (close < 0)
                    {
                        Remember(bytes);
                        return bytes.Length;
                    }

                    var at = i + close;
                    var ends = _state == State.Comment ? EndsWith(bytes, at, (byte)'-', (byte)'-') : Before(bytes, at, 1) == (byte)'?';
                    i = at + 1;
                    if (ends)
                    {
                        _state = State.Text;
                    }

                    Remember(bytes[..i]);
                    continue;
                case State.Tag:
                    var b = bytes[i];
                    if (_quote != 0)
                    {
                        if (b == _quote)
                        {
                            _quote = 0;
                        }
                    }
                    else if (b is (byte)'"' or (byte)'\'')
                    {
                        _quote = b;
                    }
                    else if (b == '>')
                    {
                        _state = State.Text;
                        i++;
                        continue;
                    }

                    if (++_tagLength > _limit)
                    {
                        throw new JUnitFormatException(0, 0,
                            $"a tag is longer than {_limit} bytes (an element with too many or too long attributes)");
                    }

                    break;
            }

            i++;
        }

        return bytes.Length;
    }

    /// <summary>
    /// Handles bytes inside a CDATA section from <paramref name="i"/>: counts them, and once the section passes
    /// <see cref="MaxCDataBytes"/> drops the rest of it. Returns null to go on scanning, or the count of bytes
    /// that go on when the read ends here (what follows a cut section is held back for the next read).
    /// </summary>
    private int? ScanCData(Span<byte> bytes, ref int i)
    {
        var close = bytes[i..].IndexOf((byte)'>');
        var stop = close < 0 ? bytes.Length : i + close + 1;
        var ended = close >= 0 && EndsWith(bytes, i + close, (byte)']', (byte)']');
        Remember(bytes[..stop]);
        if (_state == State.CData)
        {
            var room = MaxCDataBytes - _cdataLength;
            if (stop - i <= room || (ended && _cdataLength + (stop - i) - 3 <= MaxCDataBytes))
            {
                _cdataLength += stop - i;
                i = stop;
                if (ended)
                {
                    _state = State.Text;
                }

                return close < 0 ? bytes.Length : null;
            }

            // Cut here, on a UTF-8 character boundary, and drop the rest of the section.
            var cut = i + room;
            while (cut > i && (bytes[cut] & 0xC0) == 0x80)
            {
                cut--;
            }

            _dropFrom = cut;
            _state = State.CDataDropping;
        }

        if (!ended)
        {
            // Still inside the dropped part: the read ends here, or scanning goes on to the next '>'.
            i = stop;
            return stop == bytes.Length ? KeptBeforeDrop(bytes.Length) : null;
        }

        // The section's end: close it ourselves (its own "]]" may have been dropped), and hold back the rest.
        _inject = s_cdataEnd;
        HoldBack(bytes[stop..]);
        _state = State.Text;
        return KeptBeforeDrop(stop);
    }

    /// <summary>What of this read goes on while dropping: everything before the cut (0 if the cut was earlier).</summary>
    private int KeptBeforeDrop(int length)
    {
        var kept = Math.Min(Math.Max(_dropFrom, 0), length);
        _dropFrom = 0; // the next read starts inside the dropped part
        return kept;
    }

    private void HoldBack(ReadOnlySpan<byte> rest)
    {
        var remaining = _leftover.AsSpan(_leftoverStart);
        _leftover = [.. rest, .. remaining];
        _leftoverStart = 0;
    }

    private byte Before(ReadOnlySpan<byte> bytes, int at, int back) =>
        at - back >= 0 ? bytes[at - back] : back - at == 1 ? _previous : _beforePrevious;

    private bool EndsWith(ReadOnlySpan<byte> bytes, int at, byte first, byte second) =>
        Before(bytes, at, 2) == first && Before(bytes, at, 1) == second;

    private State StartTag()
    {
        _tagLength = 2;
        _quote = 0;
        return State.Tag;
    }

    private State StartCData()
    {
        _cdataLength = 0;
        return StartSkipping(State.CData);
    }

    /// <summary>The opener's own bytes must not count towards its terminator ("&lt;!--&gt;" does not end a comment).</summary>
    private State StartSkipping(State state)
    {
        _previous = _beforePrevious = 0;
        return state;
    }

    /// <summary>Keeps the last two bytes seen, for terminators split across reads.</summary>
    private void Remember(ReadOnlySpan<byte> seen)
    {
        if (seen.Length >= 2)
        {
            (_beforePrevious, _previous) = (seen[^2], seen[^1]);
        }
        else if (seen.Length == 1)
        {
            (_beforePrevious, _previous) = (_previous, seen[0]);
        }
    }
}
