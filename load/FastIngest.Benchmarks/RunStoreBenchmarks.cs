using BenchmarkDotNet.Attributes;
using FastIngest.Configuration;
using FastIngest.Storage;
using FastIngest.Storage.Sqlite;

namespace FastIngest.Benchmarks;

/// <summary>
/// The SQLite-only ceiling of the ingest writer: one batch of unique runs committed and made durable, exactly as
/// the writer does it, without HTTP. Divide by the batch size for the per-run cost.
/// </summary>
[ShortRunJob]
public class RunStoreBenchmarks
{
    private BenchmarkDatabase _db = null!;
    private SqliteRunBatchStore _store = null!;
    private RunRecord[] _batch = null!;
    private RunWriteOutcome[] _outcomes = null!;
    private long _next;

    [Params(32, 256)]
    public int BatchSize { get; set; }

    [Params(DurabilityMode.Full, DurabilityMode.Normal)]
    public DurabilityMode Durability { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _db = new BenchmarkDatabase(Durability);
        _db.Execute("INSERT INTO orgs (public_id, name, created_at) VALUES ('o', 'o', 0);");
        _db.Execute("INSERT INTO projects (public_id, org_id, name, created_at) VALUES ('p', 1, 'p', 0);");
        _store = new SqliteRunBatchStore(_db.Database, Durability);
        _batch = new RunRecord[BatchSize];
        _outcomes = new RunWriteOutcome[BatchSize];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.Dispose();
        _db.Dispose();
    }

    [Benchmark(Description = "commit + fsync one batch")]
    public void CommitBatch()
    {
        for (var i = 0; i < _batch.Length; i++)
        {
            var n = _next++;
            _batch[i] = new RunRecord
            {
                ProjectKey = 1,
                RunId = "run-" + n,
                Passed = true,
                DurationMs = n % 600_000,
                TimestampMs = 1_768_212_000_000 + n,
                Branch = "main",
                Fingerprint = (UInt128)n,
                ReceivedAtMs = 1_768_212_000_000,
            };
        }

        _store.Commit(_batch, _outcomes);
        _store.MakeDurable();
    }
}
