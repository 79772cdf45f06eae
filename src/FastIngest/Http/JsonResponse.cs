using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace FastIngest.Http;

/// <summary>
/// Writes a JSON body built with <see cref="Utf8JsonWriter"/> into a buffer first, so every response has a
/// Content-Length (no chunking) and the access log knows its size. The buffer and the writer are reused per thread
/// (as the log formatter does): the body is copied into the response pipe before anything is awaited, so the next
/// response on the thread may take them at once. A buffer a large response grew is not kept.
/// </summary>
public static class JsonResponse
{
    private const int KeptBufferBytes = 64 * 1024;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    public const string ContentType = "application/json; charset=utf-8";

    /// <summary>Relaxed escaping keeps quotes and angle brackets readable; bodies are never embedded in HTML.</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Task WriteAsync<TState>(HttpContext context, int status, TState state, Action<Utf8JsonWriter, TState> write,
        string contentType = ContentType)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(256);
        buffer.ResetWrittenCount();
        var json = t_writer;
        if (json is null)
        {
            t_writer = json = new Utf8JsonWriter(buffer, WriterOptions);
        }
        else
        {
            json.Reset(buffer);
        }

        write(json, state);
        json.Flush();

        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = contentType;
        response.ContentLength = buffer.WrittenCount;
        response.BodyWriter.Write(buffer.WrittenSpan); // copied now: the buffer is free again before any await
        if (buffer.Capacity > KeptBufferBytes)
        {
            t_buffer = null;
            t_writer = null;
        }

        var flushed = response.BodyWriter.FlushAsync();
        return flushed.IsCompletedSuccessfully ? Task.CompletedTask : flushed.AsTask();
    }

    public static string Timestamp(long unixMs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary><c>"counts": {total, passed, failed, skipped}</c>, or <c>null</c>.</summary>
    public static void WriteCounts(this Utf8JsonWriter json, Storage.RunCounts? counts)
    {
        if (counts is not { } c)
        {
            json.WriteNull("counts"u8);
            return;
        }

        json.WriteStartObject("counts"u8);
        json.WriteNumber("total"u8, c.Total);
        json.WriteNumber("passed"u8, c.Passed);
        json.WriteNumber("failed"u8, c.Failed);
        json.WriteNumber("skipped"u8, c.Skipped);
        json.WriteEndObject();
    }

    public static void WriteTimestamp(this Utf8JsonWriter json, ReadOnlySpan<byte> name, long? unixMs)
    {
        if (unixMs is { } ms)
        {
            json.WriteString(name, Timestamp(ms));
        }
        else
        {
            json.WriteNull(name);
        }
    }
}
