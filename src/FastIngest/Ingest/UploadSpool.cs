using System.Buffers;
using FastIngest.Configuration;
using FastIngest.Http;
using FastIngest.Storage;
using Microsoft.AspNetCore.WebUtilities;

namespace FastIngest.Ingest;

/// <summary>
/// A large upload's body is received in full before it asks for an upload slot: the first 64 KiB in memory, the
/// rest in a private spool file under the data directory, deleted when the request ends (and at start, for
/// files a kill -9 left behind). A slot then covers only work the server does at its own pace (parsing and the
/// commit), so a client that sends slowly, or many tenants sending slowly together, hold connections and disk,
/// never the slots others need.
/// <para>
/// What the spool may hold is bounded per tenant: at most <see cref="ServerOptions.UploadsReceivingPerOrg"/>
/// bodies of one org arrive at once, each no larger than its route's limit; the next gets 503 at once.
/// </para>
/// </summary>
public sealed class UploadSpool
{
    /// <summary>Bodies up to this size never touch the disk.</summary>
    private const int MemoryThreshold = 64 * 1024;

    private readonly string _directory;
    private readonly int _perTenant;
    private readonly Dictionary<long, int> _receiving = [];

    public UploadSpool(ServerOptions options)
    {
        _directory = Path.Combine(options.DataDirectory, "spool");
        _perTenant = Math.Max(1, options.UploadsReceivingPerOrg);
        PrivateFiles.EnsureDirectory(_directory);
        foreach (var left in Directory.EnumerateFiles(_directory))
        {
            try
            {
                File.Delete(left); // an upload a kill -9 interrupted: never acknowledged, so nothing is lost
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>Bodies arriving right now, over all tenants.</summary>
    public int Receiving
    {
        get
        {
            lock (_receiving)
            {
                return _receiving.Values.Sum();
            }
        }
    }

    /// <summary>A place in the tenant's spool, or null when it already has its most bodies arriving (answer 503).</summary>
    public Reservation? TryReserve(long tenantKey)
    {
        lock (_receiving)
        {
            var count = _receiving.GetValueOrDefault(tenantKey);
            if (count >= _perTenant)
            {
                return null;
            }

            _receiving[tenantKey] = count + 1;
            return new Reservation(this, tenantKey);
        }
    }

    /// <summary>
    /// Reads the whole body, up to <paramref name="limit"/> bytes, into the spool. The caller disposes the body
    /// (which deletes its file) when the request is done with it.
    /// </summary>
    public async Task<Received> ReceiveAsync(HttpContext context, long limit)
    {
        if (context.Request.ContentLength > limit)
        {
            return new Received(null, TooLarge: true, null);
        }

        var spooled = new FileBufferingReadStream(context.Request.Body, MemoryThreshold, bufferLimit: null, _directory, ArrayPool<byte>.Shared);
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            long total = 0;
            int read;
            while ((read = await spooled.ReadAsync(buffer, context.RequestAborted)) > 0)
            {
                total += read;
                if (total > limit)
                {
                    await spooled.DisposeAsync();
                    return new Received(null, TooLarge: true, null);
                }
            }

            spooled.Seek(0, SeekOrigin.Begin);
            return new Received(new SpooledBody(spooled, total), TooLarge: false, null);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await spooled.DisposeAsync();
            return new Received(null, TooLarge: true, null);
        }
        catch (Exception e) when (e is BadHttpRequestException or IOException or OperationCanceledException)
        {
            // Broken framing gets a 400 (or Kestrel's 408) that says so; a client that went away gets nothing.
            await spooled.DisposeAsync();
            return new Received(null, TooLarge: false, RequestBody.MalformedReason(context, e));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Release(long tenantKey)
    {
        lock (_receiving)
        {
            if (--_receiving[tenantKey] == 0)
            {
                _receiving.Remove(tenantKey);
            }
        }
    }

    /// <param name="Body">The whole body, positioned at its start; null when it was not received.</param>
    /// <param name="TooLarge">Over the limit: answer 413.</param>
    /// <param name="Malformed">Why the body could not be read, when the client is still there to be told (answer 400
    /// or the status already set); with neither, the client went away.</param>
    public readonly record struct Received(SpooledBody? Body, bool TooLarge, string? Malformed);

    /// <summary>A tenant's place in the spool, held until its body's file is gone.</summary>
    public sealed class Reservation(UploadSpool owner, long tenantKey) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                owner.Release(tenantKey);
            }
        }
    }
}

/// <summary>A received body: its bytes (in memory or in a spool file) and how many there are.</summary>
public sealed class SpooledBody(Stream content, long length) : IAsyncDisposable
{
    public Stream Content { get; } = content;

    public long Length { get; } = length;

    public ValueTask DisposeAsync() => Content.DisposeAsync();
}
