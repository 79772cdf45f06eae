namespace FastIngest.Auth;

public readonly record struct AuthResult(Principal? Principal, AuthFailure Failure)
{
    public static AuthResult Success(Principal principal) => new(principal, AuthFailure.None);

    public static AuthResult Fail(AuthFailure failure) => new(null, failure);
}
