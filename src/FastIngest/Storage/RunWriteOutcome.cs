namespace FastIngest.Storage;

public enum RunWriteOutcome : byte
{
    /// <summary>The run was new and is now committed.</summary>
    Created,

    /// <summary>The same (project, run_id) with the same content was already stored.</summary>
    Duplicate,

    /// <summary>The same (project, run_id) is stored with different content; nothing was changed.</summary>
    Conflict,

    /// <summary>The run's project no longer exists or its deletion has begun; nothing was stored.</summary>
    ProjectGone,

    /// <summary>
    /// This run alone could not be stored (a constraint the validation did not foresee); nothing of it was
    /// stored, and the other runs of its batch were committed without it.
    /// </summary>
    Failed,

    /// <summary>
    /// The run id is stored, and this upload cannot join it: a run is either uploaded in one piece or in shards
    /// (never both), and every shard of a run names the same branch and commit. Nothing was changed.
    /// </summary>
    ShardMismatch,

    /// <summary>The run has as many shards as a run may have; this new one was not stored.</summary>
    TooManyShards,

    /// <summary>A lookup-only run (its org is over its daily quota) that is not stored yet: nothing was stored.</summary>
    OverQuota,
}
