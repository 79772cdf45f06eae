namespace FastIngest.Observability;

/// <summary>
/// The access log's answer to fleet traffic. At 16,000 runs/s a line per successful upload is 16,000 lines/s that
/// nobody reads, and writing them cost about a third of the server's CPU (measured: <c>/healthz</c> 41-47k req/s
/// with a line per request against 66-69k without). So with <c>--access-log summary</c> (the default) a 2xx answer
/// on a high-volume route (ingest, health, readiness, metrics) is counted instead, and each such route that saw
/// traffic gets one <c>http_requests_summary</c> line per second: how many, which 2xx, the mean and the slowest
/// duration, and the slowest request's id and project, so an outlier can still be traced. Every other request (any
/// error, any 3xx/4xx/5xx, every management call and read) keeps its own <c>http_request</c> line with its request
/// id. <c>--access-log all</c> writes a line for every request.
/// <para>
/// Counting is lock-free (a handful of interlocked adds; the slowest request is swapped in only when it is
/// slower), so the hot path costs no allocation. A line may miss or gain a request racing the once-a-second swap;
/// /metrics has the exact counts.
/// </para>
/// </summary>
public sealed class AccessLogSummary : BackgroundService
{
    /// <summary>Routes whose successful answers are summarised: the ones fleets and probes call thousands of times a second.</summary>
    private static readonly (string Method, string Route)[] s_summarised =
        [("POST", "/v1/ingest"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")];

    private readonly Bucket[] _buckets;
    private readonly bool _enabled;
    private readonly ILogger _logger;
    private readonly TimeProvider _clock;

    public AccessLogSummary(Configuration.ServerOptions options, ILoggerFactory loggers, TimeProvider clock)
    {
        _enabled = options.AccessLog == AccessLogMode.Summary;
        _logger = loggers.CreateLogger("FastIngest.Http");
        _clock = clock;
        _buckets = Array.ConvertAll(s_summarised, static r => new Bucket(r.Method, r.Route));
    }

    public static TimeSpan Interval { get; } = TimeSpan.FromSeconds(1);

    /// <summary>Counts the request when its line belongs in a summary; false when it gets a line of its own.</summary>
    public bool TryCount(string method, string route, int status, double durationMs, string requestId, string? projectId)
    {
        if (!_enabled || status is < 200 or > 299)
        {
            return false;
        }

        foreach (var bucket in _buckets)
        {
            if (bucket.Route == route)
            {
                if (bucket.Method != method)
                {
                    return false;
                }

                bucket.Count(status, durationMs, requestId, projectId);
                return true;
            }
        }

        return false;
    }

    /// <summary>Writes one line per route that had traffic since the last call; the background loop calls it every second.</summary>
    public void Flush()
    {
        foreach (var bucket in _buckets)
        {
            bucket.Flush(_logger);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_enabled)
        {
            return;
        }

        using var timer = new PeriodicTimer(Interval, _clock);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                Flush();
            }
        }
        catch (OperationCanceledException)
        {
        }

        Flush(); // the last partial second is not lost at shutdown
    }

    private sealed class Bucket(string method, string route)
    {
        private long _count, _ok, _created, _micros;
        private Slowest? _slowest;

        public string Method { get; } = method;

        public string Route { get; } = route;

        public void Count(int status, double durationMs, string requestId, string? projectId)
        {
            Interlocked.Increment(ref _count);
            if (status == 200)
            {
                Interlocked.Increment(ref _ok);
            }
            else if (status == 201)
            {
                Interlocked.Increment(ref _created);
            }

            var micros = (long)(durationMs * 1000);
            Interlocked.Add(ref _micros, micros);
            var slowest = Volatile.Read(ref _slowest);
            while (slowest is null || micros > slowest.Micros)
            {
                var candidate = new Slowest(micros, requestId, projectId);
                var seen = Interlocked.CompareExchange(ref _slowest, candidate, slowest);
                if (ReferenceEquals(seen, slowest))
                {
                    break;
                }

                slowest = seen;
            }
        }

        public void Flush(ILogger logger)
        {
            var count = Interlocked.Exchange(ref _count, 0);
            var ok = Interlocked.Exchange(ref _ok, 0);
            var created = Interlocked.Exchange(ref _created, 0);
            var micros = Interlocked.Exchange(ref _micros, 0);
            var slowest = Interlocked.Exchange(ref _slowest, null);
            if (count > 0)
            {
                var meanMs = Math.Round(micros / 1000.0 / count, 3);
                Log.RequestsSummary(logger, Method, Route, count, ok, created, count - ok - created, meanMs, (slowest?.Micros ?? 0) / 1000.0,
                    slowest?.RequestId, slowest?.ProjectId);
            }
        }
    }

    private sealed record Slowest(long Micros, string RequestId, string? ProjectId);
}

/// <summary>What the access log writes for successful high-volume requests (<see cref="AccessLogSummary"/>).</summary>
public enum AccessLogMode
{
    /// <summary>2xx answers on ingest, health, readiness and metrics are summarised once a second; everything else has its own line.</summary>
    Summary,

    /// <summary>One line per request.</summary>
    All,
}
