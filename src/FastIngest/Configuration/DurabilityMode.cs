namespace FastIngest.Configuration;

/// <summary>How hard a commit pushes data to disk before a run is acknowledged.</summary>
public enum DurabilityMode
{
    /// <summary><c>synchronous=FULL</c>: an acknowledged run survives power loss.</summary>
    Full,

    /// <summary><c>synchronous=NORMAL</c>: survives a process crash, may lose the last commits on power loss.</summary>
    Normal,
}
