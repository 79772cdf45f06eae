using System.Collections.Concurrent;
using System.Text.RegularExpressions;

namespace FastIngest.Tests.Infrastructure;

/// <summary>
/// Sits in every test server's HttpClient and remembers every token that crossed the wire (sent in an
/// Authorization header or returned in a body), so the server's disposal can prove none reached a log line.
/// </summary>
public sealed partial class SecretCollector : DelegatingHandler
{
    private readonly ConcurrentDictionary<string, byte> _secrets = new(StringComparer.Ordinal);

    public SecretCollector()
        : base(new SocketsHttpHandler())
    {
    }

    public ICollection<string> Secrets => _secrets.Keys;

    public void Remember(string secret) => _secrets.TryAdd(secret, 0);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.Headers.Authorization?.Parameter is { Length: > 8 } sent)
        {
            Remember(sent);
        }

        var response = await base.SendAsync(request, cancellationToken);
        if (response.Content is not null)
        {
            await response.Content.LoadIntoBufferAsync(cancellationToken);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            foreach (Match match in TokenPattern().Matches(text))
            {
                Remember(match.Value);
            }
        }

        return response;
    }

    [GeneratedRegex("fi[aoir]_[0-9A-Za-z]{61}")]
    private static partial Regex TokenPattern();
}
