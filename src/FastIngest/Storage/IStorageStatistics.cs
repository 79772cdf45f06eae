namespace FastIngest.Storage;

/// <summary>Sizes of what the storage backend keeps on disk, for the metrics endpoint.</summary>
public interface IStorageStatistics
{
    IReadOnlyList<(string Name, long Bytes)> FileSizes();
}
