using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using FastIngest.Auth;
using FastIngest.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FastIngest.Tests.Infrastructure;

/// <summary>
/// The real server, in process, on a free loopback port over real HTTP, against a WAL SQLite file in a
/// temporary directory. Owns the admin token and the captured logs.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private bool _stopped;

    private TestServer(WebApplication app, ServerOptions options, string adminToken, CapturedLogs logs)
    {
        _app = app;
        Options = options;
        AdminToken = adminToken;
        Logs = logs;
        Secrets = new SecretCollector();
        Secrets.Remember(adminToken);
        Client = new HttpClient(new ContractCheck(Secrets)) { BaseAddress = FastIngestServer.BoundAddress(app), Timeout = TimeSpan.FromSeconds(60) };
    }

    public ServerOptions Options { get; }

    public string AdminToken { get; }

    public CapturedLogs Logs { get; }

    public HttpClient Client { get; }

    /// <summary>Every token this server's tests sent or received.</summary>
    public SecretCollector Secrets { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>Starts a server on SQLite in a temp directory, or on PostgreSQL when <paramref name="postgres"/> names a database.</summary>
    public static async Task<TestServer> StartAsync(string? dataDirectory = null, string? adminToken = null,
        Func<ServerOptions, ServerOptions>? configure = null, ISecretHasher? hasher = null, string? postgres = null,
        Action<IServiceCollection>? replace = null)
    {
        adminToken ??= ApiTokenFormat.Generate(TokenScope.Admin).Token;
        var options = new ServerOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            DataDirectory = dataDirectory ?? Directory.CreateTempSubdirectory("fastingest-test-").FullName,
            AdminToken = adminToken,
            LogLevel = LogLevel.Debug,
            Postgres = postgres,
        };
        options = configure?.Invoke(options) ?? options;
        var logs = new CapturedLogs();
        var app = FastIngestServer.Build(options, TextWriter.Null, logging =>
        {
            logging.ClearProviders();
            logging.AddProvider(logs);
        }, services =>
        {
            if (hasher is not null)
            {
                services.AddSingleton(hasher);
            }

            replace?.Invoke(services);
        });
        await app.StartAsync();
        return new TestServer(app, options, adminToken, logs);
    }

    /// <summary>A test's look at the stored rows behind the server's back: the first column of every row, as text.</summary>
    public List<string> QueryStrings(string sql)
    {
        var values = new List<string>();
        if (Options.Postgres is { } postgres)
        {
            using var connection = new Npgsql.NpgsqlConnection(postgres);
            connection.Open();
            using var command = new Npgsql.NpgsqlCommand(sql, connection);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                values.Add(reader.GetValue(0).ToString()!);
            }

            return values;
        }

        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Options.DatabasePath};Mode=ReadOnly"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                values.Add(reader.GetValue(0).ToString()!);
            }
        }

        return values;
    }

    public T Service<T>()
        where T : notnull => _app.Services.GetRequiredService<T>();

    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? token, string? json = null,
        string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(method, path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8);
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }

        return await Client.SendAsync(request);
    }

    public Task<HttpResponseMessage> PostAsync(string path, string? token, object body) =>
        SendAsync(HttpMethod.Post, path, token, JsonSerializer.Serialize(body));

    public async Task<Tenant> CreateTenantAsync(string name, string scope = "ingest")
    {
        using var org = await PostAsync("/v1/orgs", AdminToken, new { name });
        var orgJson = await Json.ReadAsync(org, HttpStatusCode.Created);
        var orgId = orgJson.GetProperty("id").GetString()!;
        var orgToken = orgJson.GetProperty("token").GetProperty("token").GetString()!;

        using var project = await PostAsync("/v1/projects", orgToken, new { org_id = orgId, name = name + "-project" });
        var projectId = (await Json.ReadAsync(project, HttpStatusCode.Created)).GetProperty("id").GetString()!;

        using var token = await PostAsync("/v1/tokens", orgToken, new { project_id = projectId, scope });
        var tokenJson = await Json.ReadAsync(token, HttpStatusCode.Created);
        return new Tenant(orgId, orgToken, projectId, tokenJson.GetProperty("token").GetString()!, tokenJson.GetProperty("id").GetString()!);
    }

    /// <summary>A destructive action's two steps: ask (202 with a confirm token), then confirm; the final answer.</summary>
    public async Task<HttpResponseMessage> SendConfirmedAsync(HttpMethod method, string path, string token, string? json = null)
    {
        using var asked = await SendAsync(method, path, token, json);
        var confirm = (await Json.ReadAsync(asked, HttpStatusCode.Accepted)).GetProperty("confirm_token").GetString()!;
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Add("X-Confirm-Token", confirm);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        return await Client.SendAsync(request);
    }

    /// <summary>
    /// A destructive action answered 202 with a job: polls <c>/v1/jobs/{id}</c> (the URL the answer names in Location)
    /// until the job ends and returns its final state, which must be <c>succeeded</c>.
    /// </summary>
    public async Task<System.Text.Json.JsonElement> FinishJobAsync(HttpResponseMessage accepted, string token)
    {
        var started = await Json.ReadAsync(accepted, HttpStatusCode.Accepted);
        var url = started.GetProperty("url").GetString()!;
        Assert.Equal(url, accepted.Headers.Location?.OriginalString);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            using var polled = await SendAsync(HttpMethod.Get, url, token);
            var job = await Json.ReadAsync(polled, HttpStatusCode.OK);
            var status = job.GetProperty("status").GetString();
            if (status != "running")
            {
                Assert.True(status == "succeeded", $"the job ended {status}: {job}");
                return job;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the job is still running after 60 s: {job}");
            await Task.Delay(10);
        }
    }

    /// <summary>Both steps of a destructive action that runs as a job, and the job's final state.</summary>
    public async Task<System.Text.Json.JsonElement> ConfirmAndFinishAsync(HttpMethod method, string path, string token, string? json = null)
    {
        using var accepted = await SendConfirmedAsync(method, path, token, json);
        return await FinishJobAsync(accepted, token);
    }

    public Task<HttpResponseMessage> IngestAsync(string token, string json) => SendAsync(HttpMethod.Post, "/v1/ingest", token, json);

    public static string Run(string runId, string status = "passed", long durationMs = 1234, string timestamp = "2026-01-12T10:00:00Z") =>
        $$"""{"run_id":"{{runId}}","status":"{{status}}","duration_ms":{{durationMs}},"timestamp":"{{timestamp}}"}""";

    /// <summary>Graceful stop, as on SIGTERM: Kestrel drains, then the ingest writer drains.</summary>
    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        await _app.StopAsync();
        await _app.Services.GetRequiredService<FastIngest.Ingest.RunBatchWriter>().DisposeAsync();
    }

    /// <summary>
    /// Stops the server, then checks the redaction promise over everything this server logged: no token (and
    /// no token's secret part) that crossed the wire appears in any log line.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Client.Dispose();
        await _app.DisposeAsync();
        AssertNoSecretWasLogged();
    }

    public void AssertNoSecretWasLogged()
    {
        var lines = Logs.Lines.ToArray();
        foreach (var secret in Secrets.Secrets)
        {
            var secretPart = secret.Length == ApiTokenFormat.Length ? ApiTokenFormat.SecretOf(secret).ToString() : secret;
            foreach (var line in lines)
            {
                Assert.False(line.Contains(secretPart, StringComparison.Ordinal), $"a token's secret was logged: {line}");
            }
        }
    }
}

public sealed record Tenant(string OrgId, string OrgToken, string ProjectId, string ProjectToken, string ProjectTokenId);
