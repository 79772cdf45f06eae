using System.Reflection;
using FastIngest.Auth;
using FastIngest.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Auth;

public sealed class TokenUsageFlusherTests
{
    [Fact]
    public async Task UsesAreKeptUntilAFlushActuallyStoresThem()
    {
        var cache = new TokenCache();
        var principal = new Principal { TokenId = "tok-1", Scope = TokenScope.Ingest };
        cache.Add(cache.KeyOf("fii_example"), principal);
        principal.Touch(5_000);
        var store = DispatchProxy.Create<ITenantStore, FlakyUseRecorder>();
        var recorder = (FlakyUseRecorder)(object)store;
        var flusher = new TokenUsageFlusher(cache, store, NullLogger<TokenUsageFlusher>.Instance);

        recorder.FailNext = true;
        await Assert.ThrowsAnyAsync<IOException>(flusher.FlushNowAsync);
        await flusher.FlushNowAsync();
        await flusher.FlushNowAsync();

        // The failed write lost nothing: the retry stored the use, and only once.
        Assert.Equal([[], [("tok-1", 5_000L)], []], recorder.Stored);
    }

    /// <summary>An <see cref="ITenantStore"/> whose only working method records token uses, failing when told to.</summary>
    public class FlakyUseRecorder : DispatchProxy
    {
        public bool FailNext { get; set; }

        public List<(string, long)[]> Stored { get; } = [];

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            if (targetMethod?.Name != nameof(ITenantStore.RecordTokenUseAsync))
            {
                throw new NotSupportedException(targetMethod?.Name);
            }

            if (FailNext)
            {
                FailNext = false;
                Stored.Add([]);
                return Task.FromException(new IOException("disk full"));
            }

            Stored.Add([.. (IReadOnlyList<(string, long)>)args![0]!]);
            return Task.CompletedTask;
        }
    }
}
