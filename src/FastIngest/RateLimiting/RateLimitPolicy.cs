namespace FastIngest.RateLimiting;

/// <summary>The per-credential budgets. Each route belongs to exactly one.</summary>
public enum RateLimitPolicy : byte
{
    Ingest,
    Read,
    Management,
    Confirm,
}

internal static class RateLimitPolicyNames
{
    public static string ToName(this RateLimitPolicy policy) => policy switch
    {
        RateLimitPolicy.Ingest => "ingest",
        RateLimitPolicy.Read => "read",
        RateLimitPolicy.Management => "management",
        _ => "confirm",
    };
}
