namespace FastIngest.TestCases;

/// <summary>An upload crossed a byte limit while being read (or decompressed); nothing of it is kept.</summary>
public sealed class UploadTooLargeException : Exception
{
    public UploadTooLargeException(string what, long limit)
        : base($"{what} exceeds the limit of {limit} bytes") => Limit = limit;

    public long Limit { get; }
}
