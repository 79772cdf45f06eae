namespace FastIngest.Storage.Postgres;

/// <summary>
/// One advisory lock per project, held for a transaction. Ingest batches take it shared (any number at once, on any
/// node); what must not interleave with them takes it exclusive: beginning the project's deletion (after which no
/// batch stores a run in it) and removing its orphaned tests, messages and groups (which a batch may be about to
/// name). PostgreSQL queues lock requests, so a waiting exclusive request is not starved by a stream of shared ones.
/// </summary>
internal static class ProjectLocks
{
    /// <summary>The first key of the two-key form: "FING", so these never meet another application's advisory locks.</summary>
    public const int Namespace = 0x46494E47;

    /// <summary>SQL taking the shared lock of project <c>$n</c> (a bigint parameter).</summary>
    public static string Shared(string parameter) => $"pg_advisory_xact_lock_shared({Namespace}, ({parameter} % 2147483647)::integer)";

    /// <summary>SQL taking the exclusive lock of project <c>$n</c> (a bigint parameter).</summary>
    public static string Exclusive(string parameter) => $"pg_advisory_xact_lock({Namespace}, ({parameter} % 2147483647)::integer)";
}
