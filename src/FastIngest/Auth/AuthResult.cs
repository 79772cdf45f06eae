namespace FastIngest.Auth;

/// <summary>What authentication concluded; for <see cref="AuthFailure.Blocked"/> also how long the token id stays blocked.</summary>
public readonly record struct AuthResult(Principal? Principal, AuthFailure Failure, int RetryAfterSeconds = 0)
{
    public static AuthResult Success(Principal principal) => new(principal, AuthFailure.None);

    public static AuthResult Fail(AuthFailure failure) => new(null, failure);

    public static AuthResult Blocked(int seconds) => new(null, AuthFailure.Blocked, Math.Max(1, seconds));
}
