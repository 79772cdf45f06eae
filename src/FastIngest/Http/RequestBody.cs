using System.Buffers;
using System.IO.Pipelines;

namespace FastIngest.Http;

/// <summary>
/// Reads a whole request body up to a limit straight from Kestrel's pipe. Oversized bodies are refused as
/// soon as they cross the limit, chunked or not, so no more than the limit is ever buffered.
/// </summary>
public static class RequestBody
{
    public readonly record struct Result(bool TooLarge, bool Aborted, ReadOnlySequence<byte> Body);

    /// <summary>
    /// On success the caller owns <see cref="Result.Body"/> until it calls <see cref="Release"/>.
    /// </summary>
    public static async ValueTask<Result> ReadAsync(HttpContext context, int limit)
    {
        if (context.Request.ContentLength > limit)
        {
            return new Result(true, false, default);
        }

        var reader = context.Request.BodyReader;
        while (true)
        {
            ReadResult read;
            try
            {
                read = await reader.ReadAsync(context.RequestAborted);
            }
            catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                // Kestrel's own limit tripped first (one read can carry the body past ours and its at once).
                return new Result(true, false, default);
            }
            catch (Microsoft.AspNetCore.Http.BadHttpRequestException e)
            {
                // Broken framing (bad chunking, short body): the connection closes after this; the status says why.
                context.Response.StatusCode = e.StatusCode;
                return new Result(false, true, default);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
                return new Result(false, true, default);
            }

            var buffer = read.Buffer;
            if (buffer.Length > limit)
            {
                reader.AdvanceTo(buffer.Start, buffer.End);
                return new Result(true, false, default);
            }

            if (read.IsCompleted || read.IsCanceled)
            {
                return new Result(false, false, buffer);
            }

            // Nothing consumed, everything examined: wake up only when more bytes arrive.
            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    public static void Release(HttpContext context, in ReadOnlySequence<byte> body) =>
        context.Request.BodyReader.AdvanceTo(body.End);
}
