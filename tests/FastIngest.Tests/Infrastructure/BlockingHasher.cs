using System.Collections.Concurrent;
using FastIngest.Auth;

namespace FastIngest.Tests.Infrastructure;

/// <summary>
/// The production hasher, able to hold one chosen token's verification until the test lets it go: the race
/// harness for "something happened while this token was being verified for the first time".
/// </summary>
public sealed class BlockingHasher : ISecretHasher
{
    private readonly SecretHasher _inner = new();
    private readonly ConcurrentDictionary<string, Hold> _holds = new();
    private readonly int _maxExtraMilliseconds;

    /// <param name="maxExtraMilliseconds">
    /// Each verification also sleeps a random 0..this many ms, standing in for production Argon2's ~90 ms so
    /// that randomized races land inside the verification window often.
    /// </param>
    public BlockingHasher(int maxExtraMilliseconds = 0) => _maxExtraMilliseconds = maxExtraMilliseconds;

    /// <summary>The next verification of this token waits inside Argon2's slot until <see cref="Hold.Release"/>.</summary>
    public Hold HoldNextVerification(string token)
    {
        var hold = new Hold();
        _holds[ApiTokenFormat.SecretOf(token).ToString()] = hold;
        return hold;
    }

    public string Hash(ReadOnlySpan<char> secret) => _inner.Hash(secret);

    public bool NeedsRehash(string encodedHash) => _inner.NeedsRehash(encodedHash);

    public bool Verify(string encodedHash, ReadOnlySpan<char> secret)
    {
        if (_holds.TryRemove(secret.ToString(), out var hold))
        {
            hold.SignalEntered();
            hold.WaitForRelease();
        }
        else if (_maxExtraMilliseconds > 0)
        {
            Thread.Sleep(Random.Shared.Next(_maxExtraMilliseconds + 1));
        }

        return _inner.Verify(encodedHash, secret);
    }

    public sealed class Hold
    {
        private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly ManualResetEventSlim _released = new();

        /// <summary>Completes once the held verification has read the token's row and is inside Argon2.</summary>
        public Task Entered => _entered.Task.WaitAsync(TimeSpan.FromSeconds(30));

        public void Release() => _released.Set();

        internal void SignalEntered() => _entered.TrySetResult();

        internal void WaitForRelease()
        {
            if (!_released.Wait(TimeSpan.FromSeconds(30)))
            {
                throw new TimeoutException("The test never released the held verification.");
            }
        }
    }
}
