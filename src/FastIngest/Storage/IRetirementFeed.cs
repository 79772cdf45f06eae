namespace FastIngest.Storage;

/// <summary>
/// Credentials other processes on the same database retired: with several nodes, a token revoked (or a project or
/// org deleted) on one must stop working on every other within a second, though each keeps its own token cache. A
/// single-process backend has no other processes and needs no feed.
/// </summary>
public interface IRetirementFeed
{
    /// <summary>
    /// Until cancelled, tells <paramref name="sink"/> about every retirement any node commits (this one included),
    /// and calls <see cref="IRetirementSink.Resynchronize"/> whenever some may have been missed (the feed lost its
    /// connection and listened again).
    /// </summary>
    Task ListenAsync(IRetirementSink sink, CancellationToken cancellation);
}

/// <summary>What a node does with a retirement: forget cached credentials, so the next use reads the database.</summary>
public interface IRetirementSink
{
    void TokenRetired(string tokenId);

    void ProjectRetired(long projectKey);

    void OrgRetired(long orgKey);

    /// <summary>Retirements may have been missed: forget every cached credential.</summary>
    void Resynchronize();
}
