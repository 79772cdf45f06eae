namespace FastIngest.Http;

/// <summary>One problem with one input field, as listed in a problem+json <c>errors</c> array.</summary>
public readonly record struct FieldError(string Field, string Message);
