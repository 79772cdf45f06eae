namespace FastIngest.Storage;

/// <summary>Sizes of what the storage backend keeps and how it reuses statements, for the metrics endpoint (read at scrape time).</summary>
public interface IStorageStatistics
{
    /// <summary>
    /// Prepared-statement reuse (hits, misses) when the backend keeps its own statement cache (SQLite); null when
    /// statement reuse is the driver's business (PostgreSQL: Npgsql's auto-prepare, if the connection string enables it).
    /// </summary>
    Sqlite.StatementCacheCounters? StatementCache { get; }

    /// <summary>(name, bytes): SQLite's database file and WAL; PostgreSQL's database as the server counts it.</summary>
    ValueTask<IReadOnlyList<(string Name, long Bytes)>> SizesAsync(CancellationToken cancellation);
}
