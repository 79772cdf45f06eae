namespace FastIngest.Storage;

/// <summary>Sizes of what the storage backend keeps, for the metrics endpoint (read at scrape time).</summary>
public interface IStorageStatistics
{
    /// <summary>(name, bytes): SQLite's database file and WAL; PostgreSQL's database as the server counts it.</summary>
    ValueTask<IReadOnlyList<(string Name, long Bytes)>> SizesAsync(CancellationToken cancellation);
}
