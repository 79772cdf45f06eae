using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FastIngest.Http;
using FastIngest.Tests.Infrastructure;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace FastIngest.Tests.Contract;

/// <summary>
/// The OpenAPI document is the API's one description: served without authentication, every mapped route in it and
/// every route in it mapped, internally consistent; and the opt-in staging mode logs a response that breaks it.
/// (Every response the rest of the suite receives is checked against it by <see cref="ContractCheck"/>.)
/// </summary>
public sealed class OpenApiContractTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task TheDocumentIsServedWithoutAuthenticationAsOpenApi31()
    {
        using var response = await _server.Client.GetAsync(new Uri("/v1/openapi.json", UriKind.Relative));

        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var document = JsonDocument.Parse(body).RootElement;
        Assert.StartsWith("3.1", document.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        Assert.Equal(ContractCheck.Contract.Document, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public void EveryMappedRouteIsDocumentedAndEveryDocumentedRouteIsMapped()
    {
        var mapped = new HashSet<(string Path, string Method)>();
        foreach (var endpoint in _server.Service<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>())
        {
            var path = "/" + endpoint.RoutePattern.RawText!.TrimStart('/');
            if (!ApiContract.Covers(path) || (!path.StartsWith("/v1/", StringComparison.Ordinal) && path is not ("/healthz" or "/readyz" or "/metrics")))
            {
                continue; // the dashboard's pages, and the seed's unversioned aliases (checked below)
            }

            foreach (var method in endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? [])
            {
                if (path == "/v1/runs/{**run_id}")
                {
                    mapped.Add(("/v1/runs/{run_id}", method)); // one catch-all serves a run and its test list
                    mapped.Add(("/v1/runs/{run_id}/tests", method));
                }
                else
                {
                    mapped.Add((path, method));
                }
            }
        }

        var documented = ContractCheck.Contract.Operations.ToHashSet();
        Assert.True(mapped.SetEquals(documented),
            $"mapped but not documented: {string.Join(", ", mapped.Except(documented))}; documented but not mapped: {string.Join(", ", documented.Except(mapped))}");

        // Every unversioned alias is a /v1 route under another name.
        var aliases = _server.Service<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Select(static e => "/" + e.RoutePattern.RawText!.TrimStart('/'))
            .Where(static p => ApiContract.Covers(p) && !p.StartsWith("/v1/", StringComparison.Ordinal) && p is not ("/healthz" or "/readyz" or "/metrics"))
            .ToList();
        Assert.NotEmpty(aliases);
        Assert.All(aliases, alias => Assert.Contains(mapped, m => m.Path == "/v1" + alias.Replace("{**run_id}", "{run_id}", StringComparison.Ordinal)));
    }

    [Fact]
    public void EveryReferenceResolvesEveryOperationIsNamedOnceAndEveryPathParameterIsDeclared()
    {
        var root = JsonNode.Parse(ContractCheck.Contract.Document)!;
        var broken = new List<string>();
        foreach (var (pointer, reference) in References(root, "#"))
        {
            if (Resolve(root, reference) is null)
            {
                broken.Add($"{pointer} -> {reference}");
            }
        }

        Assert.True(broken.Count == 0, $"unresolved $refs: {string.Join(", ", broken)}");
        var ids = new List<string>();
        foreach (var (path, item) in root["paths"]!.AsObject())
        {
            foreach (var (method, operation) in item!.AsObject())
            {
                ids.Add(operation!["operationId"]?.GetValue<string>() ?? $"(none: {method} {path})");
                Assert.True(operation["responses"] is JsonObject { Count: > 0 }, $"{method} {path} lists no responses");
                var declared = (operation["parameters"] as JsonArray ?? [])
                    .Select(p => p!["$ref"] is { } r ? Resolve(root, r.GetValue<string>())! : p!)
                    .Where(static p => p["in"]?.GetValue<string>() == "path").Select(static p => p["name"]!.GetValue<string>()).ToHashSet();
                foreach (var name in path.Split('/').Where(static s => s.StartsWith('{')).Select(static s => s.Trim('{', '}')))
                {
                    Assert.True(declared.Contains(name), $"{method} {path} does not declare its path parameter '{name}'");
                }
            }
        }

        Assert.True(ids.Count == ids.Distinct(StringComparer.Ordinal).Count(), $"operationIds used twice: {string.Join(", ", ids.GroupBy(static i => i).Where(static g => g.Count() > 1).Select(static g => g.Key))}");
    }

    [Fact]
    public async Task TheCheckRefusesAnUndocumentedFieldStatusContentTypeAndRoute()
    {
        var tenant = await _server.CreateTenantAsync("contract-check", "read");
        using var response = await _server.SendAsync(HttpMethod.Get, "/v1/runs/no-such-run", tenant.ProjectToken);
        var body = await response.Content.ReadAsByteArrayAsync();
        var contract = ContractCheck.Contract;
        Assert.Empty(contract.Check("GET", "/v1/runs/no-such-run", 404, "application/problem+json", body)); // as received: fine

        var extra = JsonNode.Parse(body)!;
        extra["stack_trace"] = "at Somewhere()";
        var withExtra = contract.Check("GET", "/v1/runs/no-such-run", 404, "application/problem+json", Encoding.UTF8.GetBytes(extra.ToJsonString()));
        Assert.True(withExtra.Count > 0, "an undocumented field passed");
        Assert.Contains(withExtra, static p => p.Contains("stack_trace", StringComparison.Ordinal) || p.Contains("additionalProperties", StringComparison.Ordinal));
        Assert.Contains(contract.Check("GET", "/v1/runs/no-such-run", 418, "application/problem+json", body), static p => p.Contains("status 418 is not documented", StringComparison.Ordinal));
        Assert.Contains(contract.Check("GET", "/v1/runs/no-such-run", 404, "text/html", body), static p => p.Contains("content type", StringComparison.Ordinal));
        Assert.Contains(contract.Check("GET", "/v1/no-such-route", 200, "application/json", "{}"u8), static p => p.Contains("no documented route", StringComparison.Ordinal));
        Assert.Empty(contract.Check("GET", "/runs/no-such-run", 404, "application/problem+json", body)); // the seed's alias is the same operation
    }

    [Fact]
    public async Task TheDashboardRendersEveryOperationFromTheDocumentWithNoExternalAsset()
    {
        using var response = await _server.Client.GetAsync(new Uri("/ui/api", UriKind.Relative));

        var html = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {html}");
        var root = JsonDocument.Parse(ContractCheck.Contract.Document).RootElement;
        foreach (var path in root.GetProperty("paths").EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                Assert.Contains($"id=\"{operation.Value.GetProperty("operationId").GetString()}\"", html, StringComparison.Ordinal);
            }
        }

        Assert.DoesNotContain("src=", html, StringComparison.Ordinal);
        Assert.DoesNotContain("href=\"http", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ValidateResponsesLogsAResponseThatBreaksTheContractAndStillSendsIt()
    {
        // A document that no longer lists /healthz's 200: the real answer now breaks it.
        var document = JsonNode.Parse(ContractCheck.Contract.Document)!;
        document["paths"]!["/healthz"]!["get"]!["responses"]!.AsObject().Remove("200");
        var stricter = ApiContract.FromDocument(Encoding.UTF8.GetBytes(document.ToJsonString()));
        await using var server = await TestServer.StartAsync(configure: static o => o with { ValidateResponses = true },
            replace: services => services.AddSingleton(stricter));
        var before = Counter(await MetricsAsync(server));

        using var health = await new HttpClient { BaseAddress = server.Client.BaseAddress }.GetAsync(new Uri("/healthz", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, health.StatusCode); // logged, never blocked
        static string? Violation(TestServer server) => server.Logs.Lines.FirstOrDefault(static l => l.Contains("\"response_contract_violation\"", StringComparison.Ordinal));
        await Eventually.TrueAsync(() => Violation(server) is not null, "the response_contract_violation line");
        var line = Violation(server)!;
        Assert.Contains("status 200 is not documented", line, StringComparison.Ordinal);
        Assert.Contains(health.Headers.GetValues("X-Request-Id").Single(), line, StringComparison.Ordinal);
        Assert.Equal(before + 1, Counter(await MetricsAsync(server)));
    }

    private static async Task<string> MetricsAsync(TestServer server)
    {
        using var client = new HttpClient { BaseAddress = server.Client.BaseAddress };
        return await client.GetStringAsync(new Uri("/metrics", UriKind.Relative));
    }

    private static double Counter(string metrics) =>
        metrics.Split('\n').Where(static l => l.StartsWith("fastingest_contract_violations_total ", StringComparison.Ordinal))
            .Select(static l => double.Parse(l.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture)).Single();

    private static IEnumerable<(string Pointer, string Reference)> References(JsonNode? node, string pointer)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, value) in obj)
                {
                    if (key == "$ref" && value is JsonValue reference)
                    {
                        yield return (pointer, reference.GetValue<string>());
                    }
                    else
                    {
                        foreach (var found in References(value, pointer + "/" + key))
                        {
                            yield return found;
                        }
                    }
                }

                break;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    foreach (var found in References(array[i], $"{pointer}/{i}"))
                    {
                        yield return found;
                    }
                }

                break;
        }
    }

    private static JsonNode? Resolve(JsonNode root, string reference)
    {
        if (!reference.StartsWith("#/", StringComparison.Ordinal))
        {
            return null;
        }

        JsonNode? node = root;
        foreach (var part in reference[2..].Split('/'))
        {
            node = node is JsonObject obj && obj.TryGetPropertyValue(part.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal), out var next) ? next : null;
        }

        return node;
    }
}
