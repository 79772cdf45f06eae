using Prometheus;

namespace FastIngest.Observability;

/// <summary>
/// Every metric the server exports, in a registry of its own (so two servers in one test process never mix
/// counts). Labels carry only bounded values: route templates, status classes, reasons, outcomes.
/// </summary>
public sealed class ServerMetrics
{
    public ServerMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(Registry);
        // prometheus-net attaches the current trace to every observation as an exemplar by default (hex-encoding
        // its ids each time: about 0.4 µs per ingest request, measured), yet the text format /metrics serves
        // carries no exemplars. None are made.
        factory.ExemplarBehavior = ExemplarBehavior.NoExemplars();
        Factory = factory;

        HttpRequestDuration = factory.CreateHistogram(
            "fastingest_http_request_duration_seconds", "HTTP request duration by route template and status class.",
            new HistogramConfiguration
            {
                LabelNames = ["route", "status_class"],
                Buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
            });
        HttpRequestsInFlight = factory.CreateGauge("fastingest_http_requests_in_flight", "HTTP requests being served.");

        IngestOutcomes = factory.CreateCounter(
            "fastingest_ingest_outcomes_total", "Ingest requests by outcome (created, duplicate, conflict, rejected, overloaded, failed).",
            new CounterConfiguration { LabelNames = ["outcome", "reason"] });
        IngestQueueDepth = factory.CreateGauge("fastingest_ingest_queue_depth", "Runs waiting for the batch writer.");
        IngestBatchSize = factory.CreateHistogram(
            "fastingest_ingest_batch_size", "Runs committed per transaction.",
            new HistogramConfiguration { Buckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] });
        IngestCommitDuration = factory.CreateHistogram(
            "fastingest_ingest_commit_duration_seconds", "Time to write and commit one batch (before the durability flush).",
            new HistogramConfiguration { Buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] });
        IngestSyncDuration = factory.CreateHistogram(
            "fastingest_ingest_sync_duration_seconds", "Time to make committed batches durable (one WAL fsync covers all committed so far).",
            new HistogramConfiguration { Buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] });
        IngestStageDuration = factory.CreateHistogram(
            "fastingest_ingest_stage_duration_seconds",
            "Time per ingest request spent authenticating (auth), parsing and validating its body (parse) and waiting in the queue for the writer (queue_wait, which includes waiting for a flush under way to end); the commit and the flush are fastingest_ingest_commit_duration_seconds and fastingest_ingest_sync_duration_seconds.",
            new HistogramConfiguration { LabelNames = ["stage"], Buckets = [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1] });
        StorageCallDuration = factory.CreateHistogram(
            "fastingest_storage_call_duration_seconds", "Storage calls by name (find_token, list_runs, create_org, ...), as long as their callers waited.",
            new HistogramConfiguration { LabelNames = ["call"], Buckets = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5] });
        QueuedWrites = factory.CreateGauge("fastingest_storage_queued_writes", "Writes other than ingest batches waiting for the one writer.");
        QueuedWriteDuration = factory.CreateHistogram(
            "fastingest_storage_write_duration_seconds", "Time the writer spent on one write other than an ingest batch, by write.",
            new HistogramConfiguration { LabelNames = ["write"], Buckets = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1] });
        TestCasesStored = factory.CreateCounter("fastingest_test_cases_stored_total", "Test cases stored with newly created runs.");
        IngestCommitFailures = factory.CreateCounter("fastingest_ingest_commit_failures_total", "Batches whose commit failed; none of their runs was acknowledged.");
        ContractViolations = factory.CreateCounter("fastingest_contract_violations_total",
            "Responses that broke the OpenAPI contract (only counted with --validate-responses).");
        ContractChecksDropped = factory.CreateCounter("fastingest_contract_checks_dropped_total",
            "Responses --validate-responses did not check because the checker was behind (it never holds a response back).");

        TokenCacheLookups = factory.CreateCounter(
            "fastingest_auth_token_cache_total", "Token cache lookups by result (hit, miss).",
            new CounterConfiguration { LabelNames = ["result"] });
        Argon2Verifications = factory.CreateHistogram(
            "fastingest_auth_argon2_duration_seconds", "Argon2id verifications and their duration.",
            new HistogramConfiguration { Buckets = [0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2] });
        AuthFailures = factory.CreateCounter(
            "fastingest_auth_failures_total", "Failed authentications by reason.",
            new CounterConfiguration { LabelNames = ["reason"] });

        RateLimitRejections = factory.CreateCounter(
            "fastingest_rate_limit_rejections_total", "Requests refused with 429, by policy (ingest, read, management, confirm, auth_block).",
            new CounterConfiguration { LabelNames = ["policy"] });
        StorageCheckpoints = factory.CreateCounter("fastingest_storage_checkpoints_total", "WAL checkpoints run by the background checkpointer.");
        StorageCheckpointDuration = factory.CreateHistogram(
            "fastingest_storage_checkpoint_duration_seconds", "Duration of WAL checkpoints.",
            new HistogramConfiguration { Buckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5] });
        DotNetStats.Register(Registry);

        // Bytes the process allocated since it started (all threads): divided by the requests served, what a request
        // costs the GC (load/allocations.sh). Read when scraped, so the hot path does nothing for it.
        var allocated = factory.CreateCounter("fastingest_gc_allocated_bytes_total", "Bytes allocated on the managed heap since the process started.");
        Registry.AddBeforeCollectCallback(() => allocated.IncTo(GC.GetTotalAllocatedBytes(precise: false)));
    }

    public CollectorRegistry Registry { get; }

    /// <summary>Makes metrics in <see cref="Registry"/> the way every server metric is made (no exemplars).</summary>
    public IMetricFactory Factory { get; }

    public Counter RateLimitRejections { get; }

    public Counter ContractViolations { get; }

    public Counter ContractChecksDropped { get; }

    public Counter StorageCheckpoints { get; }

    public Histogram StorageCheckpointDuration { get; }

    public Histogram HttpRequestDuration { get; }

    public Gauge HttpRequestsInFlight { get; }

    public Counter IngestOutcomes { get; }

    public Gauge IngestQueueDepth { get; }

    public Gauge QueuedWrites { get; }

    public Histogram IngestStageDuration { get; }

    public Histogram StorageCallDuration { get; }

    public Histogram QueuedWriteDuration { get; }

    public Histogram IngestBatchSize { get; }

    public Histogram IngestCommitDuration { get; }

    public Histogram IngestSyncDuration { get; }

    public Counter IngestCommitFailures { get; }

    public Counter TestCasesStored { get; }

    public Counter TokenCacheLookups { get; }

    public Histogram Argon2Verifications { get; }

    public Counter AuthFailures { get; }
}
