using System.Net;

namespace FastIngest.Configuration;

/// <summary>
/// Reads <see cref="ServerOptions"/> from command-line flags, falling back to <c>FASTINGEST_*</c> environment
/// variables, then to defaults. Hand-written so that it needs no reflection and every error names its flag.
/// </summary>
public static class ServerOptionsParser
{
    public const string HelpText = """
        fastingest - a self-hosted test-result ingestion server

        Usage: fastingest [options]
               fastingest new-admin-token      print a fresh, well-formed admin token (nothing is stored)
               fastingest upload [options] <file|directory|glob>...   send JUnit reports from CI (fastingest upload --help)
               fastingest seed --runs N [--days D] [--data DIR]
                                               fill a new project with N generated runs (benchmarks)

        Options (each also read from the environment variable shown):
          --listen <ip:port>          FASTINGEST_LISTEN          API address (default 127.0.0.1:8080)
          --metrics-listen <ip:port>  FASTINGEST_METRICS_LISTEN  serve /metrics only here (default: on --listen)
          --data <dir>                FASTINGEST_DATA            data directory (default ./data)
          --postgres <url>            FASTINGEST_POSTGRES        store in PostgreSQL instead of SQLite (a postgres://
                                                                 URL or an Npgsql connection string); any number of
                                                                 nodes may share one database
          --durability <full|normal>  FASTINGEST_DURABILITY      full: fsync every commit (default); normal: WAL
                                                                 without fsync on commit, may lose the newest
                                                                 commits on power loss (never on a process crash)
          --log-level <level>         FASTINGEST_LOG_LEVEL       trace|debug|information|warning|error (default information)
          --access-log <summary|all>  FASTINGEST_ACCESS_LOG      summary: successful ingest, health and metrics requests
                                                                 are counted in one line per second and route (default);
                                                                 all: one line per request
          --max-body <bytes>          FASTINGEST_MAX_BODY        largest JSON ingest body (default 4194304)
          --max-junit <bytes>         FASTINGEST_MAX_JUNIT       largest JUnit XML upload as sent (default 268435456);
                                                                 twice this is the cap after gzip decompression
          --max-test-cases <n>        FASTINGEST_MAX_TEST_CASES  test cases per run, attempts included (default 100000)
          --queue <n>                 FASTINGEST_QUEUE           ingest queue capacity (default 8192)
          --batch <n>                 FASTINGEST_BATCH           most runs per commit (default 512)
          --slow-query-ms <ms>        FASTINGEST_SLOW_QUERY_MS   log storage calls at least this slow (default 100)
          --validate-responses        FASTINGEST_VALIDATE_RESPONSES  check every API response against /v1/openapi.json
                                                                 and log the ones that break it (for staging)
          --rate-ingest <n>           FASTINGEST_RATE_INGEST     ingest requests per token per minute (default 60000, 0 = off)
          --rate-read <n>             FASTINGEST_RATE_READ       read requests per token per minute (default 6000, 0 = off)
          --rate-manage <n>           FASTINGEST_RATE_MANAGE     org/project/token changes per token per minute (default 120)
          --quota-rows <n>            FASTINGEST_QUOTA_ROWS      runs plus test cases one org may store per UTC day
                                                                 (default 0 = no quota); past it ingest answers 429
          --quota-bytes <n>           FASTINGEST_QUOTA_BYTES     bytes of ingest bodies (as sent) whose runs one org may
                                                                 store per UTC day (default 0 = no quota); past it 429
          --trusted-proxies <list>    FASTINGEST_TRUSTED_PROXIES reverse proxies (IPs or CIDRs, comma-separated) whose
                                                                 X-Forwarded-For names the client (default: none, the
                                                                 header is ignored)
          --infra-failure-percent <n> FASTINGEST_INFRA_FAILURE_PERCENT  a run where more than n% of its tests failed
                                                                 (at least 10 ran) is an infrastructure failure, left
                                                                 out of flaky, broken and failure rates (default 50)
          --broken-min-executions <n> FASTINGEST_BROKEN_MIN_EXECUTIONS  executions, all failing, that make a test
                                                                 broken (default 3)
          --fixed-after-days <n>      FASTINGEST_FIXED_AFTER_DAYS  days without a flake that make a flaky test
                                                                 fixed (default 7)
                                      FASTINGEST_ADMIN_TOKEN     admin token to use instead of generating one
          --help                      show this text
          --version                   show the version
        """;

    public static bool TryParse(
        IReadOnlyList<string> args,
        Func<string, string?> environment,
        out ServerOptions? options,
        out string? error)
    {
        options = null;
        var flags = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                error = $"unexpected argument '{arg}'";
                return false;
            }

            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            string name, value;
            if (eq > 0)
            {
                name = arg[2..eq];
                value = arg[(eq + 1)..];
            }
            else if (arg is "--validate-responses" && (i + 1 == args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal)))
            {
                name = arg[2..]; // a switch: on when named
                value = "true";
            }
            else if (i + 1 < args.Count)
            {
                name = arg[2..];
                value = args[++i];
            }
            else
            {
                error = $"flag '{arg}' needs a value";
                return false;
            }

            if (!IsKnownFlag(name))
            {
                error = $"unknown flag '--{name}'";
                return false;
            }

            flags[name] = value;
        }

        string? Get(string flag, string env) => flags.TryGetValue(flag, out var v) ? v : environment(env);

        if (!TryParseEndPoint(Get("listen", "FASTINGEST_LISTEN") ?? "127.0.0.1:8080", "--listen", out var listen, out error))
        {
            return false;
        }

        IPEndPoint? metricsListen = null;
        var metricsText = Get("metrics-listen", "FASTINGEST_METRICS_LISTEN");
        if (!string.IsNullOrEmpty(metricsText) && !TryParseEndPoint(metricsText, "--metrics-listen", out metricsListen, out error))
        {
            return false;
        }

        if (metricsListen is not null && (metricsListen.Port == listen!.Port || metricsListen.Port == 0))
        {
            // The API and /metrics are told apart by the port a connection arrives on.
            error = $"--metrics-listen must use its own fixed port, not {metricsListen.Port} (--listen uses {listen.Port})";
            return false;
        }

        var postgres = Get("postgres", "FASTINGEST_POSTGRES");
        var validateText = Get("validate-responses", "FASTINGEST_VALIDATE_RESPONSES") ?? "false";
        bool validateResponses;
        switch (validateText.ToLowerInvariant())
        {
            case "true" or "1" or "on": validateResponses = true; break;
            case "false" or "0" or "off" or "": validateResponses = false; break;
            default:
                error = $"--validate-responses must be true or false, not '{validateText}'";
                return false;
        }

        var durabilityText = Get("durability", "FASTINGEST_DURABILITY") ?? "full";
        DurabilityMode durability;
        switch (durabilityText.ToLowerInvariant())
        {
            case "full": durability = DurabilityMode.Full; break;
            case "normal": durability = DurabilityMode.Normal; break;
            default:
                error = $"--durability must be 'full' or 'normal', not '{durabilityText}'";
                return false;
        }

        var levelText = Get("log-level", "FASTINGEST_LOG_LEVEL") ?? "information";
        if (!Enum.TryParse<LogLevel>(levelText, ignoreCase: true, out var level) || !Enum.IsDefined(level))
        {
            error = $"--log-level '{levelText}' is not one of trace, debug, information, warning, error, critical, none";
            return false;
        }

        var accessLogText = Get("access-log", "FASTINGEST_ACCESS_LOG") ?? "summary";
        Observability.AccessLogMode accessLog;
        switch (accessLogText.ToLowerInvariant())
        {
            case "summary": accessLog = Observability.AccessLogMode.Summary; break;
            case "all": accessLog = Observability.AccessLogMode.All; break;
            default:
                error = $"--access-log must be 'summary' or 'all', not '{accessLogText}'";
                return false;
        }

        if (!TryParseInt(Get("max-body", "FASTINGEST_MAX_BODY"), "--max-body", 1024, 64 * 1024 * 1024, 4 * 1024 * 1024, out var maxBody, out error)
            || !TryParseInt(Get("max-junit", "FASTINGEST_MAX_JUNIT"), "--max-junit", 1024, 1024 * 1024 * 1024, 256 * 1024 * 1024, out var maxJUnit, out error)
            || !TryParseInt(Get("max-test-cases", "FASTINGEST_MAX_TEST_CASES"), "--max-test-cases", 1, 10_000_000, 100_000, out var maxTestCases, out error)
            || !TryParseInt(Get("queue", "FASTINGEST_QUEUE"), "--queue", 1, 1_000_000, 8192, out var queue, out error)
            || !TryParseInt(Get("batch", "FASTINGEST_BATCH"), "--batch", 1, 10_000, 512, out var batch, out error)
            || !TryParseInt(Get("slow-query-ms", "FASTINGEST_SLOW_QUERY_MS"), "--slow-query-ms", 1, 3_600_000, 100, out var slowQueryMs, out error)
            || !TryParseInt(Get("rate-ingest", "FASTINGEST_RATE_INGEST"), "--rate-ingest", 0, int.MaxValue, 60_000, out var rateIngest, out error)
            || !TryParseInt(Get("rate-read", "FASTINGEST_RATE_READ"), "--rate-read", 0, int.MaxValue, 6_000, out var rateRead, out error)
            || !TryParseInt(Get("rate-manage", "FASTINGEST_RATE_MANAGE"), "--rate-manage", 0, int.MaxValue, 120, out var rateManage, out error)
            || !TryParseInt(Get("quota-rows", "FASTINGEST_QUOTA_ROWS"), "--quota-rows", 0, int.MaxValue, 0, out var quotaRows, out error)
            || !TryParseLong(Get("quota-bytes", "FASTINGEST_QUOTA_BYTES"), "--quota-bytes", out var quotaBytes, out error)
            || !TryParseInt(Get("infra-failure-percent", "FASTINGEST_INFRA_FAILURE_PERCENT"), "--infra-failure-percent", 1, 100, 50,
                out var infraPercent, out error)
            || !TryParseInt(Get("broken-min-executions", "FASTINGEST_BROKEN_MIN_EXECUTIONS"), "--broken-min-executions", 1, 1000, 3,
                out var brokenMin, out error)
            || !TryParseInt(Get("fixed-after-days", "FASTINGEST_FIXED_AFTER_DAYS"), "--fixed-after-days", 1, 365, 7, out var fixedDays, out error))
        {
            return false;
        }

        if (!TryParseNetworks(Get("trusted-proxies", "FASTINGEST_TRUSTED_PROXIES"), out var trustedProxies, out error))
        {
            return false;
        }

        var adminToken = environment("FASTINGEST_ADMIN_TOKEN");
        options = new ServerOptions
        {
            Listen = listen!,
            MetricsListen = metricsListen,
            DataDirectory = Path.GetFullPath(Get("data", "FASTINGEST_DATA") ?? "data"),
            Durability = durability,
            LogLevel = level,
            AccessLog = accessLog,
            AdminToken = string.IsNullOrWhiteSpace(adminToken) ? null : adminToken.Trim(),
            MaxIngestBodyBytes = maxBody,
            MaxJUnitUploadBytes = maxJUnit,
            MaxJUnitXmlBytes = 2L * maxJUnit,
            TestCases = new FastIngest.TestCases.TestCaseLimits { MaxTestCases = maxTestCases },
            IngestQueueCapacity = queue,
            MaxBatchSize = batch,
            SlowStorageCall = TimeSpan.FromMilliseconds(slowQueryMs),
            Postgres = string.IsNullOrWhiteSpace(postgres) ? null : postgres.Trim(),
            ValidateResponses = validateResponses,
            TrustedProxies = trustedProxies,
            RowsPerOrgPerDay = quotaRows,
            BytesPerOrgPerDay = quotaBytes,
            TestStates = new FastIngest.TestAnalytics.TestStateRules
            {
                InfraFailureShare = infraPercent / 100.0,
                BrokenMinExecutions = brokenMin,
                FixedAfterDays = fixedDays,
            },
            RateLimits = new FastIngest.RateLimiting.RateLimitOptions
            {
                IngestPerWindow = rateIngest,
                ReadPerWindow = rateRead,
                ManagementPerWindow = rateManage,
            },
        };
        error = null;
        return true;
    }

    private static bool IsKnownFlag(string name) => name is "listen" or "metrics-listen" or "data" or "durability"
        or "log-level" or "access-log" or "max-body" or "max-junit" or "max-test-cases" or "queue" or "batch" or "slow-query-ms"
        or "rate-ingest" or "rate-read" or "rate-manage" or "trusted-proxies" or "quota-rows" or "quota-bytes" or "infra-failure-percent"
        or "broken-min-executions" or "fixed-after-days" or "postgres" or "validate-responses";

    private static bool TryParseNetworks(string? text, out IReadOnlyList<IPNetwork> networks, out string? error)
    {
        var parsed = new List<IPNetwork>();
        networks = parsed;
        error = null;
        foreach (var part in (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (IPNetwork.TryParse(part, out var network))
            {
                parsed.Add(network);
            }
            else if (IPAddress.TryParse(part, out var address))
            {
                parsed.Add(new IPNetwork(address, address.GetAddressBytes().Length * 8));
            }
            else
            {
                error = $"--trusted-proxies takes IP addresses or CIDR ranges separated by commas, e.g. 10.0.0.5,10.1.0.0/16, not '{part}'";
                return false;
            }
        }

        return true;
    }

    private static bool TryParseEndPoint(string text, string flag, out IPEndPoint? endPoint, out string? error)
    {
        var candidate = text.StartsWith(':') ? "0.0.0.0" + text : text;
        if (candidate.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase))
        {
            candidate = "127.0.0.1" + candidate["localhost".Length..];
        }

        if (IPEndPoint.TryParse(candidate, out endPoint) && candidate.Contains(':', StringComparison.Ordinal))
        {
            error = null;
            return true;
        }

        endPoint = null;
        error = $"{flag} must be <ip>:<port>, e.g. 127.0.0.1:8080, not '{text}'";
        return false;
    }

    private static bool TryParseInt(string? text, string flag, int min, int max, int fallback, out int value, out string? error)
    {
        error = null;
        if (text is null)
        {
            value = fallback;
            return true;
        }

        if (int.TryParse(text, out value) && value >= min && value <= max)
        {
            return true;
        }

        error = $"{flag} must be an integer from {min} to {max}, not '{text}'";
        return false;
    }

    /// <summary>A non-negative byte count (0 = off).</summary>
    private static bool TryParseLong(string? text, string flag, out long value, out string? error)
    {
        error = null;
        value = 0;
        if (text is null)
        {
            return true;
        }

        if (long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out value))
        {
            return true;
        }

        error = $"{flag} must be a whole number of bytes (0 = off), not '{text}'";
        return false;
    }
}
