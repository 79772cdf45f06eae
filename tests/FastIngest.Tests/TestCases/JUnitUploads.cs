using System.IO.Compression;
using System.Net.Http.Headers;
using System.Text;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.TestCases;

/// <summary>Posting JUnit reports the way a CI job would.</summary>
internal static class JUnitUploads
{
    public static byte[] Report(string file) =>
        File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "TestCases", "Reports", file));

    public static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    public static async Task<HttpResponseMessage> PostAsync(TestServer server, string token, byte[] body, string query,
        string contentType = "application/xml", string? contentEncoding = null, IDictionary<string, string>? headers = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest" + (query.Length > 0 ? "?" + query : ""));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        request.Content = new ByteArrayContent(body);
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (contentEncoding is not null)
        {
            request.Content.Headers.ContentEncoding.Add(contentEncoding);
        }

        return await server.Client.SendAsync(request);
    }

    public static Task<HttpResponseMessage> PostAsync(TestServer server, string token, string xml, string query) =>
        PostAsync(server, token, Encoding.UTF8.GetBytes(xml), query);
}
