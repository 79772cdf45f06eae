namespace FastIngest.Tests.Infrastructure;

/// <summary>A chunked body sent in two parts: the second only when the test says so.</summary>
public sealed class HeldBody(byte[] head, byte[] tail) : HttpContent
{
    private readonly TaskCompletionSource _headSent = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _sendTail = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task HeadSent => _headSent.Task.WaitAsync(TimeSpan.FromSeconds(30));

    public void SendTail() => _sendTail.TrySetResult();

    protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
    {
        await stream.WriteAsync(head);
        await stream.FlushAsync();
        _headSent.TrySetResult();
        await _sendTail.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await stream.WriteAsync(tail);
    }

    protected override bool TryComputeLength(out long length)
    {
        length = -1;
        return false;
    }
}
