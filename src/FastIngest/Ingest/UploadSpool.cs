using System.Buffers;
using FastIngest.Configuration;
using FastIngest.Http;
using FastIngest.Storage;

namespace FastIngest.Ingest;

/// <summary>
/// A large upload's body is received in full before it asks for an upload slot: the first 64 KiB in memory, the
/// rest in a private (0600) spool file under the data directory, deleted when the request ends (and at start,
/// for files a kill -9 left behind). A slot then covers only work the server does at its own pace (parsing and
/// the commit), so a client that sends slowly, or many tenants sending slowly together, hold connections and
/// spool space, never the slots others need.
/// <para>
/// The spool shares its disk with the database, so what it may hold is budgeted in bytes: per org
/// (<see cref="ServerOptions.SpoolBytesPerOrg"/>), in all (<see cref="ServerOptions.SpoolBytesTotal"/>), and never
/// below <see cref="ServerOptions.SpoolMinFreeBytes"/> of free disk; a body that would cross a budget is answered
/// 503 with Retry-After as soon as it does (at once when its declared length already does). An org may also
/// have at most <see cref="ServerOptions.UploadsReceivingPerOrg"/> bodies arriving at once. A disk error while
/// spooling is the server's problem, answered 503, never the client's 400.
/// </para>
/// </summary>
public sealed class UploadSpool
{
    /// <summary>Bodies up to this size never touch the disk.</summary>
    private const int MemoryThreshold = 64 * 1024;

    private const int ReadSize = 64 * 1024;

    private readonly string _directory;
    private readonly ServerOptions _options;
    private readonly Dictionary<long, (int Bodies, long Bytes)> _tenants = [];
    private long _bytes;

    public UploadSpool(ServerOptions options)
    {
        _options = options;
        _directory = Path.Combine(options.DataDirectory, "spool");
        PrivateFiles.EnsureDirectory(_directory);
        foreach (var left in System.IO.Directory.EnumerateFiles(_directory))
        {
            try
            {
                File.Delete(left); // an upload a kill -9 interrupted: never acknowledged, so nothing is lost
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Not ours to remove (a read-only leftover): it only costs disk, and must not stop the start.
            }
        }
    }

    public string Directory => _directory;

    /// <summary>Bodies arriving or waiting to be parsed right now, over all tenants.</summary>
    public int Receiving
    {
        get
        {
            lock (_tenants)
            {
                return _tenants.Values.Sum(static t => t.Bodies);
            }
        }
    }

    /// <summary>Bytes the spool holds for bodies right now (memory and disk).</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>A place in the tenant's spool, or null when it already has its most bodies arriving (answer 503).</summary>
    public Reservation? TryReserve(long tenantKey)
    {
        lock (_tenants)
        {
            var (bodies, bytes) = _tenants.GetValueOrDefault(tenantKey);
            if (bodies >= Math.Max(1, _options.UploadsReceivingPerOrg))
            {
                return null;
            }

            _tenants[tenantKey] = (bodies + 1, bytes);
            return new Reservation(this, tenantKey);
        }
    }

    /// <summary>
    /// Reads the whole body, up to <paramref name="limit"/> bytes, into the spool, charging its bytes to the
    /// reservation. The caller disposes the body (which deletes its file) before the reservation.
    /// </summary>
    public async Task<Received> ReceiveAsync(HttpContext context, Reservation reservation, long limit)
    {
        var declared = context.Request.ContentLength;
        if (declared > limit)
        {
            return new Received(null, ReceiveFailure.TooLarge, null);
        }

        if (declared is { } length && !reservation.TryCharge(length))
        {
            return new Received(null, ReceiveFailure.SpoolFull, null);
        }

        if (!HasFreeSpace())
        {
            return new Received(null, ReceiveFailure.SpoolFull, null);
        }

        var body = new SpoolBuffer(_directory);
        var buffer = ArrayPool<byte>.Shared.Rent(ReadSize);
        var keep = false;
        try
        {
            long total = 0;
            while (true)
            {
                int read;
                try
                {
                    read = await context.Request.Body.ReadAsync(buffer.AsMemory(0, ReadSize), context.RequestAborted);
                }
                catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
                {
                    return new Received(null, ReceiveFailure.TooLarge, null);
                }
                catch (Exception e) when (e is BadHttpRequestException or IOException or OperationCanceledException)
                {
                    // Broken framing gets a 400 (or Kestrel's 408) that says so; a client that went away gets nothing.
                    return new Received(null, ReceiveFailure.Unreadable, RequestBody.MalformedReason(context, e));
                }

                if (read == 0)
                {
                    break;
                }

                total += read;
                if (total > limit)
                {
                    return new Received(null, ReceiveFailure.TooLarge, null);
                }

                if ((declared is null || total > declared) && !reservation.TryCharge(read))
                {
                    return new Received(null, ReceiveFailure.SpoolFull, null);
                }

                try
                {
                    await body.WriteAsync(buffer.AsMemory(0, read));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    return new Received(null, ReceiveFailure.SpoolFull, null); // a full or failing disk: ours, not the client's
                }
            }

            keep = true;
            return new Received(new SpooledBody(body.ToReadStream(), total), ReceiveFailure.None, null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            if (!keep)
            {
                body.Dispose();
            }
        }
    }

    private bool HasFreeSpace()
    {
        try
        {
            return new DriveInfo(_directory).AvailableFreeSpace >= _options.SpoolMinFreeBytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return true; // no answer from the file system: the writes themselves will tell
        }
    }

    private bool TryCharge(long tenantKey, long bytes)
    {
        lock (_tenants)
        {
            var (bodies, held) = _tenants[tenantKey];
            if (held + bytes > _options.SpoolBytesPerOrg || _bytes + bytes > _options.SpoolBytesTotal)
            {
                return false;
            }

            _tenants[tenantKey] = (bodies, held + bytes);
            _bytes += bytes;
            return true;
        }
    }

    private void Release(long tenantKey, long bytes)
    {
        lock (_tenants)
        {
            var (bodies, held) = _tenants[tenantKey];
            _bytes -= bytes;
            if (bodies == 1)
            {
                _tenants.Remove(tenantKey);
            }
            else
            {
                _tenants[tenantKey] = (bodies - 1, held - bytes);
            }
        }
    }

    public enum ReceiveFailure
    {
        None,

        /// <summary>Over the route's limit: answer 413.</summary>
        TooLarge,

        /// <summary>Over a spool budget, below the free-space floor, or the disk failed: answer 503 with Retry-After.</summary>
        SpoolFull,

        /// <summary>The client's body could not be read: answer <see cref="Received.Malformed"/> if set, else nobody is left.</summary>
        Unreadable,
    }

    /// <param name="Body">The whole body, positioned at its start; null when it was not received.</param>
    /// <param name="Failure">Why not.</param>
    /// <param name="Malformed">For <see cref="ReceiveFailure.Unreadable"/>: why, when the client is still there to be told.</param>
    public readonly record struct Received(SpooledBody? Body, ReceiveFailure Failure, string? Malformed);

    /// <summary>A tenant's place in the spool and the bytes charged to it, held until its body's file is gone.</summary>
    public sealed class Reservation(UploadSpool owner, long tenantKey) : IDisposable
    {
        private long _charged;
        private int _released;

        internal bool TryCharge(long bytes)
        {
            if (!owner.TryCharge(tenantKey, bytes))
            {
                return false;
            }

            _charged += bytes;
            return true;
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                owner.Release(tenantKey, _charged);
            }
        }
    }

    /// <summary>Memory up to <see cref="MemoryThreshold"/>, then a private temp file that deletes itself when closed.</summary>
    private sealed class SpoolBuffer(string directory) : IDisposable
    {
        private byte[]? _head = ArrayPool<byte>.Shared.Rent(MemoryThreshold);
        private int _headLength;
        private FileStream? _file;

        public async ValueTask WriteAsync(ReadOnlyMemory<byte> data)
        {
            if (_file is null && _headLength + data.Length <= MemoryThreshold)
            {
                data.CopyTo(_head.AsMemory(_headLength));
                _headLength += data.Length;
                return;
            }

            if (_file is null)
            {
                var options = new FileStreamOptions
                {
                    Mode = FileMode.CreateNew,
                    Access = FileAccess.ReadWrite,
                    Options = FileOptions.DeleteOnClose | FileOptions.Asynchronous | FileOptions.SequentialScan,
                };
                if (!OperatingSystem.IsWindows())
                {
                    options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                }

                _file = new FileStream(Path.Combine(directory, Path.GetRandomFileName()), options);
                await _file.WriteAsync(_head.AsMemory(0, _headLength));
            }

            await _file.WriteAsync(data);
        }

        /// <summary>The bytes written, from the start; owns (and on dispose frees) the memory or the file.</summary>
        public Stream ToReadStream()
        {
            if (_file is { } file)
            {
                ReturnHead();
                file.Position = 0;
                return file;
            }

            var head = _head!;
            _head = null;
            return new PooledMemoryStream(head, _headLength);
        }

        public void Dispose()
        {
            _file?.Dispose();
            ReturnHead();
        }

        private void ReturnHead()
        {
            if (_head is { } head)
            {
                _head = null;
                ArrayPool<byte>.Shared.Return(head);
            }
        }
    }

    private sealed class PooledMemoryStream : MemoryStream
    {
        private byte[]? _pooled;

        public PooledMemoryStream(byte[] pooled, int length)
            : base(pooled, 0, length, writable: false) => _pooled = pooled;

        protected override void Dispose(bool disposing)
        {
            base.Dispose(disposing);
            if (Interlocked.Exchange(ref _pooled, null) is { } pooled)
            {
                ArrayPool<byte>.Shared.Return(pooled);
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
