using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using FastIngest.Auth;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Smoke;

/// <summary>
/// A Jepsen-style set test against the AOT binary: ingest unique runs under concurrent load, kill -9 the server
/// at a random moment, restart, repeat. Every run that was acknowledged (201/200) must be in the database after
/// every crash, no run that was refused (4xx) may be, and SQLite's integrity check must pass after each restart.
/// <c>./build.sh crash --cycles 100</c> runs the long version (FASTINGEST_CRASH_CYCLES).
/// </summary>
public sealed class CrashTests
{
    private const int Workers = 32;

    [Fact]
    public async Task KillMinus9NeverLosesAnAcknowledgedRun()
    {
        var cycles = int.TryParse(Environment.GetEnvironmentVariable("FASTINGEST_CRASH_CYCLES"), out var c) ? c : 5;
        var dir = Directory.CreateTempSubdirectory("fastingest-crash-").FullName;
        var admin = ApiTokenFormat.Generate(TokenScope.Admin).Token;
        var acknowledged = new ConcurrentDictionary<string, byte>();
        var refused = new ConcurrentDictionary<string, byte>();
        var random = new Random();
        string? token = null;
        var sequence = 0;

        for (var cycle = 1; cycle <= cycles; cycle++)
        {
            await using var binary = AotBinary.Start(dir, admin);
            using var client = new HttpClient { BaseAddress = binary.Address, Timeout = TimeSpan.FromSeconds(10) };
            await binary.WaitUntilHealthyAsync(client);
            token ??= await CreateIngestTokenAsync(client, admin);

            using var stop = new CancellationTokenSource();
            var load = Enumerable.Range(0, Workers).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var n = Interlocked.Increment(ref sequence);
                    var runId = $"crash-{n}";
                    // One request in ten is invalid (a negative duration): it must be refused and never stored.
                    // One in three carries test cases, which must be stored with their run or not at all.
                    var body = TestServer.Run(runId, durationMs: n % 10 == 0 ? -1 : n);
                    if (ExpectedCases(n) > 0)
                    {
                        var tests = string.Join(',', Enumerable.Range(0, ExpectedCases(n)).Select(i => $"{{\"name\":\"t{i}\",\"status\":\"passed\",\"duration_ms\":{i}}}"));
                        body = body.Replace("}", $",\"tests\":[{tests}]}}", StringComparison.Ordinal);
                    }

                    try
                    {
                        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/ingest") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
                        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                        using var response = await client.SendAsync(request, stop.Token);
                        if (response.StatusCode is HttpStatusCode.Created or HttpStatusCode.OK)
                        {
                            acknowledged.TryAdd(runId, 0);
                        }
                        else if ((int)response.StatusCode is >= 400 and < 500)
                        {
                            refused.TryAdd(runId, 0);
                        }
                    }
                    catch (Exception e) when (e is HttpRequestException or OperationCanceledException or System.Net.Sockets.SocketException or IOException)
                    {
                        // Killed mid-request: never acknowledged, so nothing was promised. (A kill during the connect can
                        // surface as a bare SocketException, "Transport endpoint is not connected", seen once on a fresh clone.)
                    }
                }
            })).ToArray();

            await Task.Delay(random.Next(150, 900));
            binary.Signal("KILL");
            await binary.WaitForExitAsync(TimeSpan.FromSeconds(10));
            await stop.CancelAsync();
            await Task.WhenAll(load);

            var stored = ReadStoredRuns(dir, out var integrity);
            Assert.Equal("ok", integrity);
            var lost = acknowledged.Keys.Where(id => !stored.ContainsKey(id)).ToList();
            var leaked = refused.Keys.Where(stored.ContainsKey).ToList();
            var torn = stored.Where(r => r.Value != ExpectedCases(int.Parse(r.Key["crash-".Length..], System.Globalization.CultureInfo.InvariantCulture))).ToList();
            Assert.True(lost.Count == 0, $"cycle {cycle}: {lost.Count} acknowledged runs lost, e.g. {string.Join(", ", lost.Take(5))}");
            Assert.True(leaked.Count == 0, $"cycle {cycle}: {leaked.Count} refused runs stored, e.g. {string.Join(", ", leaked.Take(5))}");
            Assert.True(torn.Count == 0, $"cycle {cycle}: {torn.Count} runs stored without exactly their test cases, e.g. {string.Join(", ", torn.Take(5))}");
        }

        Console.WriteLine($"crash test: {cycles} kill -9 cycles, {acknowledged.Count} acknowledged runs, 0 lost, " +
            $"{refused.Count} refused runs, 0 stored, every stored run with exactly its test cases; integrity_check ok after every crash");
        Assert.True(acknowledged.Count > cycles * 10, $"too little load to prove anything: {acknowledged.Count} acknowledged");
    }

    private static async Task<string> CreateIngestTokenAsync(HttpClient client, string admin)
    {
        async Task<System.Text.Json.JsonElement> PostAsync(string path, string json)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin);
            using var response = await client.SendAsync(request);
            return await Json.ReadAsync(response, HttpStatusCode.Created);
        }

        var org = (await PostAsync("/v1/orgs", """{"name":"crash"}""")).GetProperty("id").GetString();
        var project = (await PostAsync("/v1/projects", $$"""{"org_id":"{{org}}","name":"crash"}""")).GetProperty("id").GetString();
        return (await PostAsync("/v1/tokens", $$"""{"project_id":"{{project}}"}""")).GetProperty("token").GetString()!;
    }

    private static int ExpectedCases(int n) => n % 3 == 0 ? (n % 7) + 1 : 0;

    /// <summary>
    /// Opens the database the way a restart would (running WAL recovery) and reads every run id with how many
    /// test cases it has.
    /// </summary>
    private static Dictionary<string, long> ReadStoredRuns(string dir, out string integrity)
    {
        using var database = new FastIngest.Storage.Sqlite.SqliteDatabase(Path.Combine(dir, "fastingest.db"), FastIngest.Configuration.DurabilityMode.Full);
        using var connectionLease = database.Read();
        var connection = connectionLease.Connection;
        using (var check = connection.CreateCommand())
        {
            check.CommandText = "PRAGMA integrity_check;";
            integrity = (string)check.ExecuteScalar()!;
        }

        var runs = new Dictionary<string, long>(StringComparer.Ordinal);
        using var query = connection.CreateCommand();
        query.CommandText = "SELECT run_id, (SELECT count(*) FROM executions WHERE run_key = test_runs.id) FROM test_runs;";
        using var reader = query.ExecuteReader();
        while (reader.Read())
        {
            runs.Add(reader.GetString(0), reader.GetInt64(1));
        }

        return runs;
    }
}
