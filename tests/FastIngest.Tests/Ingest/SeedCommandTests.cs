using System.Net;
using System.Text.Json;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Ingest;

public sealed class SeedCommandTests
{
    [Fact]
    public async Task ASeededRunPostedAgainIsADuplicateNotAConflict()
    {
        var dir = Directory.CreateTempSubdirectory("fastingest-seed-").FullName;
        using var output = new StringWriter();
        Assert.Equal(0, await FastIngest.Tools.SeedCommand.RunAsync(["--runs", "3", "--data", dir], output));
        var lines = output.ToString().Split('\n', StringSplitOptions.TrimEntries);
        var projectId = lines.Single(l => l.StartsWith("project_id ", StringComparison.Ordinal))["project_id ".Length..];
        var readToken = lines.Single(l => l.StartsWith("read_token ", StringComparison.Ordinal))["read_token ".Length..];

        await using (var server = await TestServer.StartAsync(dir))
        {
            await PostASeededRunAgainAsync(server, projectId, readToken);
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(dir, recursive: true);
    }

    private static async Task PostASeededRunAgainAsync(TestServer server, string projectId, string readToken)
    {
        server.Secrets.Remember(readToken);
        using var stored = await server.SendAsync(HttpMethod.Get, "/v1/runs/seed-1", readToken);
        var run = await Json.ReadAsync(stored, HttpStatusCode.OK);
        using var created = await server.PostAsync("/v1/tokens", server.AdminToken, new { project_id = projectId });
        var ingestToken = (await Json.ReadAsync(created, HttpStatusCode.Created)).GetProperty("token").GetString()!;

        var again = JsonSerializer.Serialize(new
        {
            run_id = "seed-1",
            status = run.GetProperty("status").GetString(),
            duration_ms = run.GetProperty("duration_ms").GetInt64(),
            timestamp = run.GetProperty("timestamp").GetString(),
            branch = run.GetProperty("branch").GetString(),
        });
        using var posted = await server.IngestAsync(ingestToken, again);
        Assert.True((await Json.ReadAsync(posted, HttpStatusCode.OK)).GetProperty("duplicate").GetBoolean());
    }
}
