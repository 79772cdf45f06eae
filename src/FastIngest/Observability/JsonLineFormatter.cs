using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace FastIngest.Observability;

/// <summary>
/// One JSON object per line: <c>timestamp</c> (UTC, RFC 3339), <c>level</c>, <c>event</c>, <c>category</c>,
/// <c>message</c>, then the event's fields in snake_case, then <c>exception</c> when there is one.
/// </summary>
public sealed class JsonLineFormatter : ConsoleFormatter
{
    public const string FormatterName = "fastingest-json";

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    public JsonLineFormatter()
        : base(FormatterName)
    {
    }

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(512);
        buffer.ResetWrittenCount();
        using (var json = new Utf8JsonWriter(buffer, Http.JsonResponse.WriterOptions))
        {
            json.WriteStartObject();
            // ISO 8601 round-trip form of a UTC DateTime (…T14:05:43.2613456Z) is valid RFC 3339, written without a string.
            json.WriteString("timestamp"u8, DateTime.UtcNow);
            json.WriteString("level"u8, LevelName(logEntry.LogLevel));
            json.WriteString("event"u8, logEntry.EventId.Name ?? logEntry.EventId.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            json.WriteString("category"u8, logEntry.Category);
            json.WriteString("message"u8, message);
            if (logEntry.State is IReadOnlyList<KeyValuePair<string, object?>> fields)
            {
                foreach (var (key, value) in fields)
                {
                    if (key == "{OriginalFormat}")
                    {
                        continue;
                    }

                    WriteField(json, SnakeCase(key), value);
                }
            }

            // W3C trace context of the request (or background work) being served: the hosting layer starts an
            // activity per request, continuing an incoming traceparent, so these ids join the caller's trace.
            if (System.Diagnostics.Activity.Current is { IdFormat: System.Diagnostics.ActivityIdFormat.W3C } activity)
            {
                Span<byte> raw = stackalloc byte[16];
                Span<char> hex = stackalloc char[32];
                activity.TraceId.CopyTo(raw);
                Convert.TryToHexStringLower(raw, hex, out var written);
                json.WriteString("trace_id"u8, hex[..written]);
                activity.SpanId.CopyTo(raw[..8]);
                Convert.TryToHexStringLower(raw[..8], hex, out written);
                json.WriteString("span_id"u8, hex[..written]);
            }

            if (logEntry.Exception is { } exception)
            {
                // Type and message only: stack traces go to debug-level diagnostics, not to operators' log pipes.
                json.WriteString("exception"u8, $"{exception.GetType().Name}: {exception.Message}");
            }

            json.WriteEndObject();
        }

        textWriter.Write(Encoding.UTF8.GetString(buffer.WrittenSpan));
        textWriter.Write('\n');
    }

    private static void WriteField(Utf8JsonWriter json, string name, object? value)
    {
        switch (value)
        {
            case null: json.WriteNull(name); break;
            case string s: json.WriteString(name, s); break;
            case int i: json.WriteNumber(name, i); break;
            case long l: json.WriteNumber(name, l); break;
            case double d: json.WriteNumber(name, Math.Round(d, 3)); break;
            case bool b: json.WriteBoolean(name, b); break;
            default: json.WriteString(name, Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)); break;
        }
    }

    private static string LevelName(LogLevel level) => level switch
    {
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "error",
        _ => "critical",
    };

    /// <summary>Field names repeat on every line; convert each once.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> s_snakeNames = new(StringComparer.Ordinal);

    internal static string SnakeCase(string name) => s_snakeNames.GetOrAdd(name, static n => ToSnakeCase(n));

    private static string ToSnakeCase(string name)
    {
        var builder = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsAsciiLetterUpper(c))
            {
                if (i > 0)
                {
                    builder.Append('_');
                }

                builder.Append(char.ToLowerInvariant(c));
            }
            else
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }
}
