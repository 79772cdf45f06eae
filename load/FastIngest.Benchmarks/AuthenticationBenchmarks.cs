using BenchmarkDotNet.Attributes;
using FastIngest.Auth;
using FastIngest.Configuration;
using FastIngest.Observability;
using FastIngest.RateLimiting;
using FastIngest.Storage.Sqlite;
using Microsoft.Extensions.Primitives;

namespace FastIngest.Benchmarks;

/// <summary>
/// Authentication cost with 1 and with 100,000 stored tokens: a cache hit must not depend on the count, and a
/// miss is one indexed read (plus Argon2 when the id exists).
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class AuthenticationBenchmarks
{
    private BenchmarkDatabase _db = null!;
    private SqliteTenantStore _store = null!;
    private SqliteRunBatchStore _writer = null!;
    private Authenticator _warm = null!;
    private StringValues _valid;
    private ServerOptions _options = null!;

    [Params(1, 100_000)]
    public int StoredTokens { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _db = new BenchmarkDatabase();
        _writer = new SqliteRunBatchStore(_db.Database, DurabilityMode.Normal);
        _store = new SqliteTenantStore(_db.Database, new SqliteWrites(new InlineStorageWriter(_writer), _writer)); // setup is the only writer
        _db.Execute("INSERT INTO orgs (public_id, name, created_at) VALUES ('o', 'o', 0);");
        _db.Execute("INSERT INTO projects (public_id, org_id, name, created_at) VALUES ('p', 1, 'p', 0);");
        var (token, stored) = new TokenIssuer(_store, TimeProvider.System, new SecretHasher()).IssueUnpooledAsync(TokenScope.Ingest, 1, 1, "bench", null)
            .GetAwaiter().GetResult()!.Value;
        // Filler tokens share one (valid-format) hash: what is measured is finding a row among many.
        _db.Execute($"""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {StoredTokens - 1})
            INSERT INTO api_tokens (id, secret_hash, scope, org_id, project_id, created_at)
            SELECT printf('f%011d', i), '{stored.SecretHash}', 'ingest', 1, 1, 0 FROM n WHERE {StoredTokens} > 1;
            """);
        _options = new ServerOptions { Listen = new(System.Net.IPAddress.Loopback, 0), DataDirectory = _db.Directory };
        _valid = new StringValues("Bearer " + token);
        _warm = NewAuthenticator();
        if (_warm.AuthenticateAsync(_valid).AsTask().GetAwaiter().GetResult().Principal is null)
        {
            throw new InvalidOperationException("setup token did not authenticate");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _writer.Dispose();
        _db.Dispose();
    }

    [Benchmark(Baseline = true, Description = "cache hit")]
    public Principal? CacheHit()
    {
        var pending = _warm.AuthenticateAsync(_valid);
        // A hit completes synchronously; reading it without AsTask keeps the measurement allocation-free.
        return pending.IsCompleted ? pending.Result.Principal : pending.AsTask().GetAwaiter().GetResult().Principal;
    }

    [Benchmark(Description = "miss: unknown id (indexed read, no Argon2)")]
    public AuthFailure UnknownId() =>
        _warm.AuthenticateAsync(new StringValues("Bearer " + ApiTokenFormat.Generate(TokenScope.Ingest).Token)).AsTask().GetAwaiter().GetResult().Failure;

    [Benchmark(Description = "miss: valid token (indexed read + Argon2id)")]
    public Principal? ColdValid() => NewAuthenticator().AuthenticateAsync(_valid).AsTask().GetAwaiter().GetResult().Principal;

    private Authenticator NewAuthenticator() =>
        new(_store, new TokenCache(), TimeProvider.System, _options, new ServerMetrics(), new AuthFailureTracker(_options.RateLimits, TimeProvider.System), new SecretHasher(), new HashSlots(_options));
}
