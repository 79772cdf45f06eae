using FastIngest.Http;

namespace FastIngest.Tests.Infrastructure;

/// <summary>
/// Sits in every test server's HttpClient and holds every response the integration suite receives to the OpenAPI
/// document (<see cref="ApiContract"/>): an undocumented route, status, content type or field fails the test that
/// received it, with what was wrong and the body.
/// </summary>
public sealed class ContractCheck(HttpMessageHandler inner) : DelegatingHandler(inner)
{
    /// <summary>The document embedded in the server under test; loaded once for the whole run.</summary>
    public static ApiContract Contract { get; } = ApiContract.Load();

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken);
        var path = request.RequestUri!.AbsolutePath;
        if (!ApiContract.Covers(path))
        {
            return response; // the dashboard's pages are HTML for people, not the API
        }

        byte[] body = [];
        if (response.Content is not null)
        {
            await response.Content.LoadIntoBufferAsync(cancellationToken);
            body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        }

        var problems = Contract.Check(request.Method.Method, path, (int)response.StatusCode,
            response.Content?.Headers.ContentType?.ToString(), body);
        if (problems.Count > 0)
        {
            var text = System.Text.Encoding.UTF8.GetString(body);
            throw new ContractViolationException(
                $"The response broke the API contract (src/FastIngest/Http/openapi.json):\n  {string.Join("\n  ", problems)}\nbody: {(text.Length > 2000 ? text[..2000] + "..." : text)}");
        }

        return response;
    }
}

public sealed class ContractViolationException(string message) : Exception(message);
