using System.Text.Json;
using Json.Schema;

namespace FastIngest.Http;

/// <summary>
/// The API's contract: the OpenAPI 3.1 document embedded in the binary (<c>Http/openapi.json</c>), served at
/// <c>/v1/openapi.json</c>, and the one check every response is held to, by the test suite (each response the
/// integration tests receive) and by <c>--validate-responses</c> (logged, never blocking): the route is documented,
/// its status is listed for the operation, the content type is listed for that status, and a JSON body is valid
/// against the listed schema (JSON Schema 2020-12, through JsonSchema.Net; every object closes with
/// <c>additionalProperties: false</c>, so an undocumented field fails too).
/// </summary>
public sealed class ApiContract
{
    /// <summary>Where the document is registered for <c>$ref</c> resolution (never fetched).</summary>
    private static readonly Uri s_base = new("https://fastingest.invalid/openapi.json");

    /// <summary>The first path segments of API routes: the seed's unversioned aliases are the /v1 operations.</summary>
    private static readonly HashSet<string> s_aliasRoots = new(StringComparer.OrdinalIgnoreCase)
        { "ingest", "orgs", "projects", "tokens", "runs", "tests", "failures", "stats", "admin", "jobs" };

    private readonly JsonElement _root;
    private readonly List<Route> _routes = [];
    private readonly Lazy<BuildOptions> _build;
    private readonly Dictionary<string, string> _defNames = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JsonSchema> _schemas = new(StringComparer.Ordinal);
    private readonly Lock _building = new(); // JsonSchema.Net's registry is not safe for concurrent builds

    private ApiContract(byte[] document)
    {
        Document = document;
        _root = JsonDocument.Parse(document).RootElement;
        // The schemas are built on the first check (a server without --validate-responses never pays for it): every
        // response schema and every component schema go into one JSON Schema 2020-12 document as $defs, so each
        // $ref resolves inside a schema document (references into the OpenAPI parts around them would not).
        _build = new Lazy<BuildOptions>(BuildSchemas);
        foreach (var path in _root.GetProperty("paths").EnumerateObject())
        {
            _routes.Add(new Route(path.Name, path.Value));
        }
    }

    /// <summary>The document as served.</summary>
    public byte[] Document { get; }

    /// <summary>Every documented (path, method) pair, methods upper case.</summary>
    public IEnumerable<(string Path, string Method)> Operations =>
        _routes.SelectMany(static r => r.Item.EnumerateObject().Where(static o => IsMethod(o.Name)).Select(o => (r.Template, o.Name.ToUpperInvariant())));

    /// <summary>A contract from another document (tests check the checker with a stricter one).</summary>
    public static ApiContract FromDocument(byte[] document) => new(document);

    public static ApiContract Load()
    {
        using var stream = typeof(ApiContract).Assembly.GetManifestResourceStream("openapi.json")
            ?? throw new InvalidOperationException("openapi.json is not embedded in this build.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return new ApiContract(copy.ToArray());
    }

    /// <summary>Whether the contract covers this path at all (the API, health and metrics; not the dashboard).</summary>
    public static bool Covers(string path)
    {
        var normalized = Normalize(path);
        return normalized.StartsWith("/v1/", StringComparison.OrdinalIgnoreCase)
            || string.Equals(normalized, "/healthz", StringComparison.OrdinalIgnoreCase)
            || string.Equals(normalized, "/readyz", StringComparison.OrdinalIgnoreCase)
            || string.Equals(normalized, "/metrics", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// What is wrong with this response under the contract; empty when nothing is. A path no operation matches may
    /// only answer 404 or 405 (a problem), as an unknown route does.
    /// </summary>
    public IReadOnlyList<string> Check(string method, string path, int status, string? contentType, ReadOnlySpan<byte> body, bool checkBody = true)
    {
        // HEAD answers carry a GET's headers and no body.
        checkBody &= !HttpMethods.IsHead(method);
        var problems = new List<string>();
        var normalized = Normalize(path);
        var route = Match(normalized, method.ToLowerInvariant());
        JsonElement operation = default;
        var pointer = "";
        if (route is null || !route.Item.TryGetProperty(method.ToLowerInvariant(), out operation))
        {
            if (status is 404 or 405)
            {
                CheckBody(problems, "#/components/responses/NotFound", _root.GetProperty("components").GetProperty("responses").GetProperty("NotFound"),
                    status, contentType, body, checkBody);
                return problems;
            }

            problems.Add(route is null
                ? $"{method} {path}: no documented route (answered {status})"
                : $"{method} {path}: {method} is not documented for {route.Template} (answered {status})");
            return problems;
        }

        pointer = $"#/paths/{Escape(route.Template)}/{method.ToLowerInvariant()}/responses";
        var responses = operation.GetProperty("responses");
        var key = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (!responses.TryGetProperty(key, out var response))
        {
            problems.Add($"{method} {route.Template}: status {status} is not documented (documented: {string.Join(", ", responses.EnumerateObject().Select(static r => r.Name))})");
            return problems;
        }

        pointer += "/" + key;
        if (response.TryGetProperty("$ref", out var reference))
        {
            pointer = reference.GetString()!;
            response = Resolve(pointer);
        }

        CheckBody(problems, pointer, response, status, contentType, body, checkBody);
        for (var i = 0; i < problems.Count; i++)
        {
            problems[i] = $"{method} {route.Template} {status}: {problems[i]}";
        }

        return problems;
    }

    private void CheckBody(List<string> problems, string pointer, JsonElement response, int status, string? contentType, ReadOnlySpan<byte> body,
        bool checkBody)
    {
        var mediaType = contentType?.Split(';')[0].Trim().ToLowerInvariant();
        if (!response.TryGetProperty("content", out var content))
        {
            if (checkBody && body.Length > 0)
            {
                problems.Add($"a body of {body.Length} bytes ({contentType}) where none is documented");
            }

            return;
        }

        if (mediaType is null || !content.TryGetProperty(mediaType, out var media))
        {
            if (!checkBody || body.Length > 0 || status != 204)
            {
                problems.Add($"content type '{contentType}' is not documented (documented: {string.Join(", ", content.EnumerateObject().Select(static c => c.Name))})");
            }

            return;
        }

        if (!checkBody || !media.TryGetProperty("schema", out _) || !mediaType.EndsWith("json", StringComparison.Ordinal))
        {
            return; // text and XML bodies: the media type is the contract
        }

        JsonElement instance;
        try
        {
            instance = JsonDocument.Parse(body.ToArray()).RootElement;
        }
        catch (JsonException e)
        {
            problems.Add($"the body is not JSON: {e.Message}");
            return;
        }

        var schemaPointer = $"{pointer}/content/{Escape(mediaType)}/schema";
        JsonSchema schema;
        lock (_building)
        {
            var options = _build.Value;
            if (!_schemas.TryGetValue(schemaPointer, out schema!))
            {
                var name = _defNames.TryGetValue(schemaPointer, out var found) ? found
                    : throw new InvalidOperationException($"no schema was collected at {schemaPointer}");
                _schemas[schemaPointer] = schema = JsonSchema.Build(JsonDocument.Parse($$"""{"$ref":"{{s_base}}#/$defs/{{name}}"}""").RootElement,
                    options, new Uri($"https://fastingest.invalid/check/{name}"));
            }
        }

        var result = schema.Evaluate(instance, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (!result.IsValid)
        {
            foreach (var detail in result.Details ?? [])
            {
                foreach (var (keyword, message) in detail.Errors ?? new Dictionary<string, string>())
                {
                    problems.Add($"{detail.InstanceLocation} ({keyword}): {message}");
                }
            }

            if (problems.Count == 0)
            {
                problems.Add("the body does not match the schema");
            }
        }
    }

    /// <summary>
    /// One schema document holding every component schema under its own name and every response schema under a
    /// generated one (<see cref="_defNames"/> maps the response schema's pointer in the OpenAPI document to it).
    /// </summary>
    private BuildOptions BuildSchemas()
    {
        var root = System.Text.Json.Nodes.JsonNode.Parse(Document)!;
        var defs = new System.Text.Json.Nodes.JsonObject();
        if (root["components"]?["schemas"] is System.Text.Json.Nodes.JsonObject components)
        {
            foreach (var (name, schema) in components)
            {
                defs[name] = schema!.DeepClone();
            }
        }

        void Collect(string pointer, System.Text.Json.Nodes.JsonNode? response)
        {
            if (response?["$ref"] is { } reference)
            {
                pointer = reference.GetValue<string>();
                response = root;
                foreach (var part in pointer.TrimStart('#').Split('/', StringSplitOptions.RemoveEmptyEntries))
                {
                    response = response?[part.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)];
                }
            }

            if (response?["content"] is not System.Text.Json.Nodes.JsonObject content)
            {
                return;
            }

            foreach (var (media, body) in content)
            {
                var schemaPointer = $"{pointer}/content/{Escape(media)}/schema";
                if (body?["schema"] is { } schema && !_defNames.ContainsKey(schemaPointer))
                {
                    var name = $"response{_defNames.Count}";
                    _defNames[schemaPointer] = name;
                    defs[name] = schema.DeepClone();
                }
            }
        }

        foreach (var (path, item) in root["paths"]!.AsObject())
        {
            foreach (var (method, operation) in item!.AsObject())
            {
                if (IsMethod(method) && operation?["responses"] is System.Text.Json.Nodes.JsonObject responses)
                {
                    foreach (var (status, response) in responses)
                    {
                        Collect($"#/paths/{Escape(path)}/{method}/responses/{status}", response);
                    }
                }
            }
        }

        foreach (var (name, response) in root["components"]?["responses"]?.AsObject() ?? [])
        {
            Collect($"#/components/responses/{Escape(name)}", response);
        }

        var document = new System.Text.Json.Nodes.JsonObject
        {
            ["$schema"] = "https://json-schema.org/draft/2020-12/schema",
            ["$defs"] = defs,
        };
        var text = document.ToJsonString().Replace("\"#/components/schemas/", "\"#/$defs/", StringComparison.Ordinal);
        // OpenAPI 3.1 schemas are JSON Schema 2020-12 with a few annotation keywords of their own (example, ...).
        var options = new BuildOptions { SchemaRegistry = new SchemaRegistry(), Dialect = Dialect.Draft202012 };
        JsonSchema.Build(JsonDocument.Parse(text).RootElement, options, s_base);
        return options;
    }

    private JsonElement Resolve(string pointer)
    {
        var element = _root;
        foreach (var part in pointer.TrimStart('#').Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            element = element.GetProperty(part.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal));
        }

        return element;
    }

    /// <summary>
    /// The documented route for the path: among those that match, one that documents the method first (as routing
    /// picks an endpoint by method too), then the one with the most literal segments.
    /// </summary>
    private Route? Match(string path, string method)
    {
        Route? best = null;
        var bestHasMethod = false;
        foreach (var route in _routes)
        {
            if (!route.Pattern.IsMatch(path))
            {
                continue;
            }

            var hasMethod = route.Item.TryGetProperty(method, out _);
            if (best is null || (hasMethod && !bestHasMethod) || (hasMethod == bestHasMethod && route.Literals > best.Literals))
            {
                (best, bestHasMethod) = (route, hasMethod);
            }
        }

        return best;
    }

    /// <summary>The path as routing sees it: one trailing slash ignored, the seed's unversioned aliases under /v1.</summary>
    private static string Normalize(string path)
    {
        if (path.Length > 1 && path[^1] == '/')
        {
            path = path[..^1];
        }

        var first = path.TrimStart('/').Split('/')[0];
        return s_aliasRoots.Contains(first) ? "/v1" + path : path;
    }

    private static string Escape(string token) => token.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    private static bool IsMethod(string name) => name is "get" or "post" or "put" or "patch" or "delete" or "head" or "options";

    private sealed class Route
    {
        public Route(string template, JsonElement item)
        {
            Template = template;
            Item = item;
            var segments = template.Split('/', StringSplitOptions.RemoveEmptyEntries);
            Literals = segments.Count(static s => !s.StartsWith('{'));
            // A run id may contain slashes (the route is a catch-all); every other parameter is one segment.
            var regex = string.Join("/", segments.Select(static s => s == "{run_id}" ? "(.+)" : s.StartsWith('{') ? "([^/]+)" : System.Text.RegularExpressions.Regex.Escape(s)));
            Pattern = new System.Text.RegularExpressions.Regex("^/" + regex + "$", System.Text.RegularExpressions.RegexOptions.CultureInvariant | System.Text.RegularExpressions.RegexOptions.IgnoreCase); // routing ignores case
        }

        public string Template { get; }

        public JsonElement Item { get; }

        public int Literals { get; }

        public System.Text.RegularExpressions.Regex Pattern { get; }
    }
}
