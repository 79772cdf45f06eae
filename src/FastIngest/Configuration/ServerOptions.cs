using System.Net;

namespace FastIngest.Configuration;

/// <summary>Everything the server is told at start-up, from flags and <c>FASTINGEST_*</c> environment variables.</summary>
public sealed record ServerOptions
{
    public required IPEndPoint Listen { get; init; }

    /// <summary>Optional second endpoint that serves only <c>/metrics</c>; when null, <c>/metrics</c> is on <see cref="Listen"/>.</summary>
    public IPEndPoint? MetricsListen { get; init; }

    public required string DataDirectory { get; init; }

    public string DatabasePath => Path.Combine(DataDirectory, "fastingest.db");

    public string AdminTokenPath => Path.Combine(DataDirectory, "admin-token");

    public DurabilityMode Durability { get; init; } = DurabilityMode.Full;

    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>Whether successful high-volume requests get a line each or a once-a-second summary (the default).</summary>
    public Observability.AccessLogMode AccessLog { get; init; } = Observability.AccessLogMode.Summary;

    /// <summary>A well-formed admin token to register instead of generating one on first start.</summary>
    public string? AdminToken { get; init; }

    /// <summary>Largest JSON ingest body accepted; larger bodies get 413 without being buffered.</summary>
    public int MaxIngestBodyBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>Largest JUnit XML request body (as sent, so compressed when gzip-encoded).</summary>
    public long MaxJUnitUploadBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>Largest JUnit XML document after decompression: the gzip-bomb guard.</summary>
    public long MaxJUnitXmlBytes { get; init; } = 512L * 1024 * 1024;

    /// <summary>
    /// Large ingest requests (JUnit uploads, JSON bodies over 64 KiB) parsed and committed at once, once their
    /// bodies are in; more wait (<see cref="UploadSlotWait"/>), then get 503. Bounds the memory and CPU uploads take.
    /// </summary>
    public int UploadSlots { get; init; } = Math.Max(2, 2 * Environment.ProcessorCount);

    /// <summary>How long a received upload waits for a slot before it is answered 503.</summary>
    public TimeSpan UploadSlotWait { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Large upload bodies one org may have arriving at once (each spooled to disk up to its route's limit); the
    /// next is answered 503 at once. Bounds the spool's disk use per tenant.
    /// </summary>
    public int UploadsReceivingPerOrg { get; init; } = 64;

    /// <summary>Bytes of upload bodies one org may have in the spool at once (memory and disk).</summary>
    public long SpoolBytesPerOrg { get; init; } = 1L << 30;

    /// <summary>Bytes of upload bodies the spool may hold at once, over all orgs.</summary>
    public long SpoolBytesTotal { get; init; } = 4L << 30;

    /// <summary>Free space the spool leaves on the data directory's disk (which the database needs more).</summary>
    public long SpoolMinFreeBytes { get; init; } = 1L << 30;

    /// <summary>
    /// The longest an upload's body may take to arrive, however steadily it trickles; past it the connection is
    /// closed and nothing is stored. (The minimum rate, <see cref="Http.UploadBodyWatch.MinBytesPerSecond"/>,
    /// stops the slower ones sooner.)
    /// </summary>
    public TimeSpan UploadDeadline { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Rows (runs plus test cases) one org may store per UTC day; 0 means no quota.</summary>
    public long RowsPerOrgPerDay { get; init; }

    /// <summary>Bytes of ingest bodies (as sent) whose runs one org may store per UTC day; 0 means no quota.</summary>
    public long BytesPerOrgPerDay { get; init; }

    /// <summary>How long an upload may wait on its client before the minimum rate applies (over 1 s: Kestrel's heartbeat).</summary>
    public TimeSpan UploadMinRateGrace { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Reverse proxies whose <c>X-Forwarded-For</c> names the client (for logs). Empty: the header is ignored and
    /// the client is the connection's peer, since anyone can send the header.
    /// </summary>
    public IReadOnlyList<System.Net.IPNetwork> TrustedProxies { get; init; } = [];

    /// <summary>How tests are classified (flaky, broken, new, fixed) and which runs are infrastructure failures.</summary>
    public TestAnalytics.TestStateRules TestStates { get; init; } = new();

    /// <summary>Test cases one run may carry, whichever way they arrive.</summary>
    public FastIngest.TestCases.TestCaseLimits TestCases { get; init; } = FastIngest.TestCases.TestCaseLimits.Default;

    /// <summary>Runs waiting for the writer; when full, ingest answers 503 at once.</summary>
    public int IngestQueueCapacity { get; init; } = 8192;

    /// <summary>Most runs committed in one transaction.</summary>
    public int MaxBatchSize { get; init; } = 512;

    /// <summary>
    /// PostgreSQL to store everything in (<c>--postgres</c>: a connection string or a <c>postgres://</c> URL) instead
    /// of the embedded SQLite file; null for SQLite.
    /// </summary>
    public string? Postgres { get; init; }

    /// <summary>Check every API response against the OpenAPI document and log the ones that break it (<c>--validate-responses</c>).</summary>
    public bool ValidateResponses { get; init; }

    /// <summary>A storage call at least this slow writes a <c>slow_storage_call</c> line (<c>--slow-query-ms</c>).</summary>
    public TimeSpan SlowStorageCall { get; init; } = TimeSpan.FromMilliseconds(100);

    public FastIngest.RateLimiting.RateLimitOptions RateLimits { get; init; } = new();

    /// <summary>Seconds a cache-missing request may wait for an Argon2 slot before it gets 503.</summary>
    public TimeSpan HashQueueTimeout { get; init; } = TimeSpan.FromSeconds(2);
}
