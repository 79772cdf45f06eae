using System.Buffers;
using System.Text.Json;

namespace FastIngest.Http;

/// <summary>
/// Management request bodies: small JSON objects read into a DOM (these routes are not the hot path) and
/// validated field by field, with unknown fields named so typos are caught.
/// </summary>
public sealed class JsonBody : IDisposable
{
    public const int MaxBytes = 16 * 1024;
    private readonly JsonDocument _document;
    private readonly List<FieldError> _errors = [];

    private JsonBody(JsonDocument document) => _document = document;

    public IReadOnlyList<FieldError> Errors => _errors;

    public bool HasErrors => _errors.Count > 0;

    /// <summary>
    /// Reads and checks the envelope (content type, size, JSON object, known fields). On failure it has already
    /// answered with the right problem and returns null.
    /// </summary>
    public static async Task<JsonBody?> ReadAsync(HttpContext context, params string[] knownFields)
    {
        if (!context.Request.HasJsonContentType())
        {
            await Problems.UnsupportedMediaType(context);
            return null;
        }

        var read = await RequestBody.ReadAsync(context, MaxBytes);
        if (read.TooLarge)
        {
            await Problems.TooLarge(context, MaxBytes);
            return null;
        }

        if (read.Aborted)
        {
            if (read.Malformed is { } reason)
            {
                await Problems.MalformedBody(context, reason);
            }

            return null;
        }

        JsonDocument document;
        try
        {
            // Copied: the document must not point into Kestrel's pooled buffers after they are released.
            document = JsonDocument.Parse(read.Body.ToArray(), new JsonDocumentOptions { MaxDepth = 4 });
        }
        catch (JsonException e)
        {
            await Problems.Validation(context, [new FieldError("", $"invalid JSON at byte {e.BytePositionInLine}")]);
            return null;
        }
        finally
        {
            RequestBody.Release(context, read.Body);
        }

        var body = new JsonBody(document);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            body.Dispose();
            await Problems.Validation(context, [new FieldError("", "the body must be a JSON object")]);
            return null;
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in document.RootElement.EnumerateObject())
        {
            if (!seen.Add(property.Name))
            {
                body._errors.Add(new FieldError(property.Name, "appears more than once"));
            }
            else if (Array.IndexOf(knownFields, property.Name) < 0)
            {
                body._errors.Add(new FieldError(property.Name, "is not a known field"));
            }
        }

        return body;
    }

    public string? Text(string field, bool required, int maxLength)
    {
        if (!_document.RootElement.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            if (required)
            {
                _errors.Add(new FieldError(field, "is required"));
            }

            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            _errors.Add(new FieldError(field, "must be a string"));
            return null;
        }

        string text;
        try
        {
            text = value.GetString()!.Trim();
        }
        catch (InvalidOperationException)
        {
            _errors.Add(new FieldError(field, "must be valid UTF-8"));
            return null;
        }

        if (text.Length == 0 || text.Length > maxLength)
        {
            _errors.Add(new FieldError(field, $"must be 1 to {maxLength} characters"));
            return null;
        }

        if (text.Any(char.IsControl))
        {
            _errors.Add(new FieldError(field, "must not contain control characters"));
            return null;
        }

        return text;
    }

    public bool? Boolean(string field, bool required)
    {
        if (!_document.RootElement.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            if (required)
            {
                _errors.Add(new FieldError(field, "is required"));
            }

            return null;
        }

        if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            _errors.Add(new FieldError(field, "must be true or false"));
            return null;
        }

        return value.GetBoolean();
    }

    public long? WholeNumber(string field, long min, long max)
    {
        if (!_document.RootElement.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var number) || number < min || number > max)
        {
            _errors.Add(new FieldError(field, $"must be an integer from {min} to {max}"));
            return null;
        }

        return number;
    }

    public void AddError(string field, string message) => _errors.Add(new FieldError(field, message));

    public void Dispose() => _document.Dispose();
}
