using System.Threading.Channels;

namespace FastIngest.Http;

/// <summary>
/// <c>--validate-responses</c>, for staging: every API response is copied as it is written, and once it is complete
/// the copy is handed to <see cref="ResponseContractChecker"/>, which checks it against the contract
/// (<see cref="ApiContract"/>) on a thread of its own. The response itself is never changed, held back or delayed
/// by the check; the copy stops at 1 MiB (past it only the status and content type are checked).
/// </summary>
public sealed class ResponseValidation
{
    private const int MaxCheckedBody = 1 << 20;
    private readonly RequestDelegate _next;
    private readonly ResponseContractChecker _checker;

    public ResponseValidation(RequestDelegate next, ResponseContractChecker checker)
    {
        _next = next;
        _checker = checker;
    }

    public async Task InvokeAsync(HttpContext context)
    {
        if (!ApiContract.Covers(context.Request.Path.Value ?? ""))
        {
            await _next(context);
            return;
        }

        var original = context.Response.Body;
        var copy = new TeeStream(original, MaxCheckedBody);
        context.Response.Body = copy;
        try
        {
            await _next(context);
            try
            {
                await context.Response.BodyWriter.FlushAsync(CancellationToken.None); // what the pipe still holds, through the copy
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException)
            {
                // The client went away: there is nothing more to copy, and nothing to check.
            }
        }
        finally
        {
            context.Response.Body = original;
        }

        _checker.Enqueue(new ResponseSample(context.TraceIdentifier, context.Request.Method, context.Request.Path.Value ?? "",
            context.Response.StatusCode, context.Response.ContentType, copy.Truncated ? null : copy.ToArray()));
    }

    /// <summary>Writes through to the response and keeps a copy of the first bytes.</summary>
    private sealed class TeeStream(Stream inner, int limit) : Stream
    {
        private readonly MemoryStream _copy = new();

        public bool Truncated { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public byte[] ToArray() => _copy.ToArray();

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
            if (Truncated || _copy.Length + bytes.Length > limit)
            {
                Truncated = true;
                _copy.SetLength(0);
                return;
            }

            _copy.Write(bytes);
        }
    }
}

/// <summary>A finished response as the contract check sees it; <see cref="Body"/> is null when it was too large to copy.</summary>
public sealed record ResponseSample(string RequestId, string Method, string Path, int Status, string? ContentType, byte[]? Body);

/// <summary>
/// Checks the responses <see cref="ResponseValidation"/> copied, one at a time on its own thread, and logs each that
/// breaks the contract (<c>response_contract_violation</c>, with its request id) and counts it. A burst beyond what it
/// keeps up with is dropped, never waited for (<c>fastingest_contract_checks_dropped_total</c>).
/// </summary>
public sealed partial class ResponseContractChecker : BackgroundService
{
    private readonly Channel<ResponseSample> _samples = Channel.CreateBounded<ResponseSample>(
        new BoundedChannelOptions(1024) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly ApiContract _contract;
    private readonly Observability.ServerMetrics _metrics;
    private readonly ILogger<ResponseContractChecker> _logger;

    public ResponseContractChecker(ApiContract contract, Observability.ServerMetrics metrics, ILogger<ResponseContractChecker> logger)
    {
        _contract = contract;
        _metrics = metrics;
        _logger = logger;
    }

    public void Enqueue(ResponseSample sample)
    {
        if (!_samples.Writer.TryWrite(sample))
        {
            _metrics.ContractChecksDropped.Inc();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var sample in _samples.Reader.ReadAllAsync(stoppingToken))
            {
                try
                {
                    var problems = _contract.Check(sample.Method, sample.Path, sample.Status, sample.ContentType, sample.Body, sample.Body is not null);
                    if (problems.Count > 0)
                    {
                        _metrics.ContractViolations.Inc();
                        Log.Violation(_logger, sample.RequestId, sample.Method, sample.Status, problems.Count, string.Join(" | ", problems.Take(5)));
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Log.CheckFailed(_logger, sample.RequestId, e); // a check that fails is a finding too, never a crash
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
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
