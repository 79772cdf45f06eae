namespace FastIngest.Storage;

public enum RunWriteOutcome : byte
{
    /// <summary>The run was new and is now committed.</summary>
    Created,

    /// <summary>The same (project, run_id) with the same content was already stored.</summary>
    Duplicate,

    /// <summary>The same (project, run_id) is stored with different content; nothing was changed.</summary>
    Conflict,
}
