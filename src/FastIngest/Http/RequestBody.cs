using System.Buffers;
using System.IO.Pipelines;

namespace FastIngest.Http;

/// <summary>
/// Reads a whole request body up to a limit straight from Kestrel's pipe. Oversized bodies are refused as
/// soon as they cross the limit, chunked or not, so no more than the limit is ever buffered.
/// </summary>
public static class RequestBody
{
    /// <param name="TooLarge">Over the limit: answer 413.</param>
    /// <param name="Aborted">Not readable. With <paramref name="Malformed"/> the framing was broken (answer 400 with it);
    /// without, the client went away and nobody is left to answer.</param>
    /// <param name="Body">The whole body, when it was read.</param>
    /// <param name="Malformed">Why the body could not be read, when the client is still there to be told.</param>
    public readonly record struct Result(bool TooLarge, bool Aborted, ReadOnlySequence<byte> Body, string? Malformed = null);

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
            catch (Exception e) when (e is Microsoft.AspNetCore.Http.BadHttpRequestException or OperationCanceledException or IOException)
            {
                // Broken framing (bad or impossible chunk sizes, a short body) is the client's to hear about: a 400,
                // never the 200 an unwritten response defaults to.
                return new Result(false, true, default, MalformedReason(context, e));
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

    /// <summary>Why a body read failed, or null when the client went away (nobody to answer).</summary>
    public static string? MalformedReason(HttpContext context, Exception e)
    {
        if (context.RequestAborted.IsCancellationRequested)
        {
            return null;
        }

        // Kestrel's own verdict keeps its status (408 for a body that arrived too slowly); the rest is a 400.
        context.Response.StatusCode = e is Microsoft.AspNetCore.Http.BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status400BadRequest;
        return e is Microsoft.AspNetCore.Http.BadHttpRequestException ? e.Message : "The request body could not be read (broken framing).";
    }

    public static void Release(HttpContext context, in ReadOnlySequence<byte> body) =>
        context.Request.BodyReader.AdvanceTo(body.End);
}
