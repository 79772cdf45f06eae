namespace FastIngest.Http;

/// <summary>
/// <c>--validate-responses</c>, for staging: every API response is copied as it is written and checked against the
/// contract (<see cref="ApiContract"/>) once it is complete; a response that breaks it is logged
/// (<c>response_contract_violation</c>, with the request id and what is wrong) and counted, never changed or held
/// back. Bodies past 1 MiB are not checked (the copy stops there).
/// </summary>
public sealed partial class ResponseValidation
{
    private const int MaxCheckedBody = 1 << 20;
    private readonly RequestDelegate _next;
    private readonly ApiContract _contract;
    private readonly Observability.ServerMetrics _metrics;
    private readonly ILogger<ResponseValidation> _logger;

    public ResponseValidation(RequestDelegate next, ApiContract contract, Observability.ServerMetrics metrics, ILogger<ResponseValidation> logger)
    {
        _next = next;
        _contract = contract;
        _metrics = metrics;
        _logger = logger;
    }

    public async Task InvokeAsync(HttpContext context)
    {
        if (!ApiContract.Covers(context.Request.Path.Value ?? ""))
        {
            await _next(context);
            return;
        }

        var original = context.Response.Body;
        await using var copy = new TeeStream(original, MaxCheckedBody);
        context.Response.Body = copy;
        try
        {
            await _next(context);
            await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
        }
        finally
        {
            context.Response.Body = original;
        }

        if (copy.Truncated)
        {
            return;
        }

        try
        {
            var problems = _contract.Check(context.Request.Method, context.Request.Path.Value ?? "", context.Response.StatusCode,
                context.Response.ContentType, copy.Copied);
            if (problems.Count > 0)
            {
                _metrics.ContractViolations.Inc();
                Log.Violation(_logger, context.TraceIdentifier, context.Request.Method, context.Response.StatusCode, problems.Count,
                    string.Join(" | ", problems.Take(5)));
            }
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or KeyNotFoundException or ArgumentException)
        {
            Log.CheckFailed(_logger, context.TraceIdentifier, e);
        }
    }

    /// <summary>Writes through to the response and keeps a copy of the first bytes.</summary>
    private sealed class TeeStream(Stream inner, int limit) : Stream
    {
        private readonly MemoryStream _copy = new();

        public bool Truncated { get; private set; }

        public ReadOnlySpan<byte> Copied => _copy.GetBuffer().AsSpan(0, (int)_copy.Length);

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            Keep(buffer.AsSpan(offset, count));
            inner.Write(buffer, offset, count);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Keep(buffer.Span);
            await inner.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private void Keep(ReadOnlySpan<byte> bytes)
        {
            if (_copy.Length + bytes.Length > limit)
            {
                Truncated = true;
                return;
            }

            _copy.Write(bytes);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 70, EventName = "response_contract_violation", Level = LogLevel.Warning,
            Message = "A response broke the API contract: {Problems}")]
        public static partial void Violation(ILogger logger, string requestId, string method, int status, int problemCount, string problems);

        [LoggerMessage(EventId = 71, EventName = "response_contract_check_failed", Level = LogLevel.Warning,
            Message = "A response could not be checked against the API contract")]
        public static partial void CheckFailed(ILogger logger, string requestId, Exception exception);
    }
}
