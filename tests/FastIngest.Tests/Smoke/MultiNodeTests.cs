using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using FastIngest.Auth;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Smoke;

/// <summary>
/// Several nodes on one PostgreSQL database, as an operator runs them behind a load balancer: two real processes
/// of the AOT binary on a throwaway cluster. Idempotency, confirm tokens, revocations and durability hold across
/// them, and the admin bootstrap happens once.
/// </summary>
public sealed class MultiNodeTests : IAsyncLifetime
{
    private string _database = null!;
    private readonly List<string> _directories = [];

    public async Task InitializeAsync() => _database = await PostgresCluster.CreateDatabaseAsync("nodes");

    public Task DisposeAsync()
    {
        foreach (var directory in _directories)
        {
            Directory.Delete(directory, recursive: true);
        }

        return Task.CompletedTask;
    }

    [Fact]
    public async Task TwoNodesStartingTogetherBootstrapOneAdminToken()
    {
        var (a, b) = (StartNode(adminToken: null), StartNode(adminToken: null));
        await using (a)
        await using (b)
        {
            using var client = new HttpClient();
            await Task.WhenAll(a.WaitUntilHealthyAsync(client), b.WaitUntilHealthyAsync(client));

            var saved = new[] { a, b }.Where(static n => File.Exists(Path.Combine(n.DataDirectory, "admin-token"))).ToList();
            Assert.True(saved.Count == 1, $"admin token files: {saved.Count}; stdout A: {string.Join('\n', a.Stdout)}; B: {string.Join('\n', b.Stdout)}");
            var admins = await ScalarAsync("SELECT count(*) FROM api_tokens WHERE scope = 'admin' AND revoked_at IS NULL;");
            Assert.Equal(1, admins);

            // The token one node generated works on the other.
            var token = (await File.ReadAllTextAsync(Path.Combine(saved[0].DataDirectory, "admin-token"))).Trim();
            var other = saved[0] == a ? b : a;
            using var orgs = await SendAsync(client, other, HttpMethod.Post, "/v1/orgs", token, """{"name":"bootstrap"}""");
            Assert.True(orgs.StatusCode == HttpStatusCode.Created, $"{orgs.StatusCode}: {await orgs.Content.ReadAsStringAsync()}");
        }
    }

    [Fact]
    public async Task FiftyIdenticalPostsOverTwoNodesGiveExactlyOneCreated()
    {
        await using var nodes = await StartTwoNodesAsync("idempotent");
        var (a, b, client, tenant) = (nodes.A, nodes.B, nodes.Client, nodes.Tenant);

        var body = TestServer.Run("same-run");
        var statuses = await Task.WhenAll(Enumerable.Range(0, 50).Select(async i =>
        {
            using var response = await SendAsync(client, i % 2 == 0 ? a : b, HttpMethod.Post, "/v1/ingest", tenant.Ingest, body);
            return response.StatusCode;
        }));

        Assert.True(statuses.Count(static s => s == HttpStatusCode.Created) == 1 && statuses.Count(static s => s == HttpStatusCode.OK) == 49,
            $"statuses: {string.Join(", ", statuses.GroupBy(static s => s).Select(static g => $"{g.Key} x{g.Count()}"))}");
        Assert.Equal(1, await ScalarAsync("SELECT count(*) FROM test_runs WHERE run_id = 'same-run';"));
    }

    [Fact]
    public async Task AConfirmTokenSpentOnOneNodeIsRefusedOnTheOtherAndARevocationReachesItWithinOneSecond()
    {
        await using var nodes = await StartTwoNodesAsync("confirm");
        var (a, b, client, tenant) = (nodes.A, nodes.B, nodes.Client, nodes.Tenant);

        var path = $"/v1/projects/{tenant.ProjectId}/tokens/revoke-all";
        using var asked = await SendAsync(client, a, HttpMethod.Post, path, tenant.OrgToken, null);
        var confirm = (await Json.ReadAsync(asked, HttpStatusCode.Accepted)).GetProperty("confirm_token").GetString()!;
        using (var spent = await SendAsync(client, a, HttpMethod.Post, path, tenant.OrgToken, null, confirm))
        {
            Assert.True(spent.IsSuccessStatusCode, $"{spent.StatusCode}: {await spent.Content.ReadAsStringAsync()}");
        }

        using (var again = await SendAsync(client, b, HttpMethod.Post, path, tenant.OrgToken, null, confirm))
        {
            Assert.True((int)again.StatusCode is >= 400 and < 500, $"the spent confirm token on node B: {again.StatusCode}: {await again.Content.ReadAsStringAsync()}");
        }

        // A fresh ingest token, used on node B (so B caches it), revoked on node A: B refuses it within a second.
        var second = await CreateTokenAsync(client, a, tenant, "ingest");
        using (var used = await SendAsync(client, b, HttpMethod.Post, "/v1/ingest", second.Token, TestServer.Run("before-revoke")))
        {
            Assert.True(used.StatusCode == HttpStatusCode.Created, $"{used.StatusCode}: {await used.Content.ReadAsStringAsync()}");
        }

        using (var revoked = await SendAsync(client, a, HttpMethod.Delete, $"/v1/tokens/{second.Id}", tenant.OrgToken, null))
        {
            Assert.True(revoked.IsSuccessStatusCode, $"{revoked.StatusCode}: {await revoked.Content.ReadAsStringAsync()}");
        }

        var watch = System.Diagnostics.Stopwatch.StartNew();
        HttpStatusCode status;
        do
        {
            using var response = await SendAsync(client, b, HttpMethod.Get, "/v1/runs/before-revoke", second.Token, null);
            status = response.StatusCode;
            if (status == HttpStatusCode.Unauthorized)
            {
                break;
            }

            await Task.Delay(20);
        }
        while (watch.Elapsed < TimeSpan.FromSeconds(1));

        Assert.True(status == HttpStatusCode.Unauthorized, $"node B still answered {status} {watch.ElapsedMilliseconds} ms after the revocation on node A");
    }

    [Fact]
    public async Task KillMinus9OfOneNodeUnderLoadLosesNoAcknowledgedRunAsTheOtherNodeSees()
    {
        await using var nodes = await StartTwoNodesAsync("kill");
        var (a, b, client, tenant) = (nodes.A, nodes.B, nodes.Client, nodes.Tenant);

        var acknowledged = new ConcurrentDictionary<string, byte>();
        var sequence = 0;
        using var stop = new CancellationTokenSource();
        var load = Enumerable.Range(0, 16).Select(worker => Task.Run(async () =>
        {
            var node = worker % 2 == 0 ? a : b;
            while (!stop.IsCancellationRequested)
            {
                var runId = $"load-{Interlocked.Increment(ref sequence)}";
                var tests = string.Join(',', Enumerable.Range(0, 5).Select(i => $$"""{"name":"t{{i}}","status":"passed","duration_ms":{{i}}}"""));
                var body = TestServer.Run(runId).Replace("}", $",\"tests\":[{tests}]}}", StringComparison.Ordinal);
                try
                {
                    using var response = await SendAsync(client, node, HttpMethod.Post, "/v1/ingest", tenant.Ingest, body, cancellation: stop.Token);
                    if (response.StatusCode is HttpStatusCode.Created or HttpStatusCode.OK)
                    {
                        acknowledged.TryAdd(runId, 0);
                    }
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException or System.Net.Sockets.SocketException or IOException)
                {
                    // Node A killed mid-request: nothing was promised.
                    if (node == a && a.HasExited)
                    {
                        node = b; // as a load balancer would: the rest goes to the node that is up
                    }
                }
            }
        })).ToArray();

        await Task.Delay(Random.Shared.Next(300, 900));
        a.Signal("KILL");
        await a.WaitForExitAsync(TimeSpan.FromSeconds(10));
        await Task.Delay(300); // the load carries on through node B
        await stop.CancelAsync();
        await Task.WhenAll(load);

        Assert.True(acknowledged.Count > 50, $"only {acknowledged.Count} runs were acknowledged: the load did not run");
        var missing = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(acknowledged.Keys, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (runId, cancellation) =>
        {
            using var response = await SendAsync(client, b, HttpMethod.Get, $"/v1/runs/{runId}/tests", tenant.Read, null, cancellation: cancellation);
            if (response.StatusCode != HttpStatusCode.OK
                || JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellation)).RootElement.GetProperty("tests").GetArrayLength() != 5)
            {
                missing.Add(runId);
            }
        });
        Assert.True(missing.IsEmpty, $"{missing.Count} of {acknowledged.Count} acknowledged runs are missing or partial on node B: {string.Join(", ", missing.Take(10))}");
    }

    /// <summary>Two nodes on the test's database with one admin token, both healthy, and a tenant made through the first.</summary>
    private async Task<TwoNodes> StartTwoNodesAsync(string tenantName)
    {
        var admin = ApiTokenFormat.Generate(TokenScope.Admin).Token;
        var nodes = new TwoNodes(StartNode(admin), StartNode(admin), new HttpClient { Timeout = TimeSpan.FromSeconds(10) });
        await Task.WhenAll(nodes.A.WaitUntilHealthyAsync(nodes.Client), nodes.B.WaitUntilHealthyAsync(nodes.Client));
        nodes.Tenant = await CreateTenantAsync(nodes.Client, nodes.A, admin, tenantName);
        return nodes;
    }

    private sealed class TwoNodes(AotBinary a, AotBinary b, HttpClient client) : IAsyncDisposable
    {
        public AotBinary A { get; } = a;

        public AotBinary B { get; } = b;

        public HttpClient Client { get; } = client;

        public NodeTenant Tenant { get; set; } = null!;

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await A.DisposeAsync();
            await B.DisposeAsync();
        }
    }

    private AotBinary StartNode(string? adminToken)
    {
        var directory = Directory.CreateTempSubdirectory("fastingest-node-").FullName;
        _directories.Add(directory);
        return AotBinary.Start(directory, adminToken, "--postgres", _database, "--rate-ingest", "0", "--rate-read", "0");
    }

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new Npgsql.NpgsqlConnection(_database);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, AotBinary node, HttpMethod method, string path, string token, string? json,
        string? confirm = null, CancellationToken cancellation = default)
    {
        using var request = new HttpRequestMessage(method, new Uri(node.Address, path));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (confirm is not null)
        {
            request.Headers.Add("X-Confirm-Token", confirm);
        }

        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        return await client.SendAsync(request, cancellation);
    }

    private sealed record NodeTenant(string ProjectId, string OrgToken, string Ingest, string Read);

    private static async Task<NodeTenant> CreateTenantAsync(HttpClient client, AotBinary node, string admin, string name)
    {
        using var org = await SendAsync(client, node, HttpMethod.Post, "/v1/orgs", admin, JsonSerializer.Serialize(new { name }));
        var orgJson = await Json.ReadAsync(org, HttpStatusCode.Created);
        var orgToken = orgJson.GetProperty("token").GetProperty("token").GetString()!;
        using var project = await SendAsync(client, node, HttpMethod.Post, "/v1/projects", orgToken,
            JsonSerializer.Serialize(new { org_id = orgJson.GetProperty("id").GetString(), name = name + "-project" }));
        var projectId = (await Json.ReadAsync(project, HttpStatusCode.Created)).GetProperty("id").GetString()!;
        var tenant = new NodeTenant(projectId, orgToken, "", "");
        return tenant with
        {
            Ingest = (await CreateTokenAsync(client, node, tenant, "ingest")).Token,
            Read = (await CreateTokenAsync(client, node, tenant, "read")).Token,
        };
    }

    private static async Task<(string Token, string Id)> CreateTokenAsync(HttpClient client, AotBinary node, NodeTenant tenant, string scope)
    {
        using var token = await SendAsync(client, node, HttpMethod.Post, "/v1/tokens", tenant.OrgToken,
            JsonSerializer.Serialize(new { project_id = tenant.ProjectId, scope }));
        var json = await Json.ReadAsync(token, HttpStatusCode.Created);
        return (json.GetProperty("token").GetString()!, json.GetProperty("id").GetString()!);
    }
}
