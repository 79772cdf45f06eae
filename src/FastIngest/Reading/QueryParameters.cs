using System.Globalization;
using System.Text;
using FastIngest.Http;
using FastIngest.Ingest;

namespace FastIngest.Reading;

/// <summary>Reads query-string parameters with one clear error per bad field, collected for a single 400.</summary>
public sealed class QueryParameters
{
    private readonly IQueryCollection _query;
    private readonly List<FieldError> _errors = [];

    public QueryParameters(IQueryCollection query, params string[] known)
    {
        _query = query;
        foreach (var key in query.Keys)
        {
            if (Array.IndexOf(known, key) < 0)
            {
                _errors.Add(new FieldError(key, "is not a known query parameter"));
            }
            else if (query[key].Count > 1)
            {
                _errors.Add(new FieldError(key, "appears more than once"));
            }
        }
    }

    public IReadOnlyList<FieldError> Errors => _errors;

    public bool HasErrors => _errors.Count > 0;

    public string? Text(string name, int maxLength)
    {
        var value = _query[name];
        if (value.Count == 0)
        {
            return null;
        }

        var text = value[0] ?? "";
        if (text.Length == 0 || text.Length > maxLength || text.Any(char.IsControl))
        {
            _errors.Add(new FieldError(name, $"must be 1 to {maxLength} printable characters"));
            return null;
        }

        return text;
    }

    public int WholeNumber(string name, int min, int max, int fallback)
    {
        var text = Text(name, 12);
        if (text is null)
        {
            return fallback;
        }

        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }

        _errors.Add(new FieldError(name, $"must be an integer from {min} to {max}"));
        return fallback;
    }

    /// <summary><c>passed</c> or <c>failed</c>.</summary>
    public bool? Status()
    {
        var text = Text("status", 16);
        switch (text)
        {
            case null: return null;
            case "passed": return true;
            case "failed": return false;
            default:
                _errors.Add(new FieldError("status", "must be passed or failed"));
                return null;
        }
    }

    /// <summary>An RFC 3339 date-time, or a bare date (midnight UTC).</summary>
    public long? Instant(string name)
    {
        var text = Text(name, 40);
        if (text is null)
        {
            return null;
        }

        var candidate = text.Length == 10 ? text + "T00:00:00Z" : text;
        if (Rfc3339.TryParse(Encoding.ASCII.GetBytes(candidate), out var value))
        {
            return value.ToUnixTimeMilliseconds();
        }

        _errors.Add(new FieldError(name, "must be an RFC 3339 date-time (2026-01-12T10:00:00Z) or a date (2026-01-12)"));
        return null;
    }

    public void Add(string field, string message) => _errors.Add(new FieldError(field, message));
}
