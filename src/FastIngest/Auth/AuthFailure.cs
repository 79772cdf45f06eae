namespace FastIngest.Auth;

/// <summary>Why a request was not authenticated; also the <c>reason</c> label of the auth-failure metric.</summary>
public enum AuthFailure : byte
{
    None,
    Missing,
    Malformed,
    UnknownToken,
    WrongSecret,
    Revoked,
    Expired,

    /// <summary>Every Argon2 slot stayed busy past the queue timeout: 503, not 401.</summary>
    Overloaded,

    /// <summary>The client address is blocked after repeated failures and the token is not cached: 429.</summary>
    Blocked,
}

internal static class AuthFailureNames
{
    public static string ToName(this AuthFailure failure) => failure switch
    {
        AuthFailure.Missing => "missing",
        AuthFailure.Malformed => "malformed",
        AuthFailure.UnknownToken => "unknown_token",
        AuthFailure.WrongSecret => "wrong_secret",
        AuthFailure.Revoked => "revoked",
        AuthFailure.Expired => "expired",
        AuthFailure.Overloaded => "overloaded",
        AuthFailure.Blocked => "blocked",
        _ => "none",
    };
}
