using FastIngest.RateLimiting;
using Microsoft.Extensions.Time.Testing;

namespace FastIngest.Tests.RateLimiting;

/// <summary>Max-min fair admission: shares, hand-over order, and waits that end.</summary>
public sealed class FairSlotsTests
{
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public async Task AFreedSlotGoesToTheWaitingTenantHoldingFewestNotToTheLongestQueue()
    {
        // Four slots, two per tenant: two colluders hold all four and queue more; a newcomer arrives last.
        var slots = new TestSlots(capacity: 4, share: 2, _clock);
        var held = new List<FairSlots.Lease>();
        foreach (var colluder in new long[] { 1, 2 })
        {
            held.Add((await slots.TryEnterAsync(colluder, default))!);
            held.Add((await slots.TryEnterAsync(colluder, default))!);
        }

        var colludersQueued = new[] { slots.TryEnterAsync(1, default), slots.TryEnterAsync(2, default), slots.TryEnterAsync(1, default) };
        var newcomer = slots.TryEnterAsync(3, default);
        Assert.Equal(4, slots.Waiting);

        held[0].Dispose(); // one of tenant 1's slots frees up

        using var granted = await newcomer.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.NotNull(granted);
        Assert.True(colludersQueued.All(static t => !t.IsCompleted), "a colluder's queued request was served before the newcomer");
        Assert.Equal(1, slots.HeldBy(3));
        Assert.Equal(3, slots.Waiting);
    }

    [Fact]
    public async Task AmongEqualTenantsTheOldestRequestIsServedFirstWhateverOrderTheyAreStoredIn()
    {
        var slots = new TestSlots(capacity: 1, share: 1, _clock);
        var holder = (await slots.TryEnterAsync(9, default))!;
        using var leaves = new CancellationTokenSource();
        var leaving = slots.TryEnterAsync(7, leaves.Token);
        var first = slots.TryEnterAsync(1, default);
        await leaves.CancelAsync();
        Assert.Null(await leaving.WaitAsync(TimeSpan.FromSeconds(10)));
        var second = slots.TryEnterAsync(2, default); // takes the place tenant 7 left, ahead of tenant 1 in storage order

        holder.Dispose();

        using var lease = await first.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.NotNull(lease);
        Assert.False(second.IsCompleted, "the later request was served first");
        lease!.Dispose();
        using var next = await second.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.NotNull(next);
    }

    [Fact]
    public async Task ATenantNeverHoldsMoreThanItsShareEvenWhenSlotsAreFree()
    {
        var slots = new TestSlots(capacity: 4, share: 2, _clock);
        using var a = await slots.TryEnterAsync(1, default);
        using var b = await slots.TryEnterAsync(1, default);
        var third = slots.TryEnterAsync(1, default);

        Assert.False(third.IsCompleted, $"the tenant got a third slot of its share of 2 (in use: {slots.InUse})");
        Assert.Equal(2, slots.InUse);
        a!.Dispose();
        using var lease = await third.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.NotNull(lease);
        Assert.Equal(2, slots.HeldBy(1));
    }

    [Fact]
    public async Task AWaitThatRunsOutAnswersNullAndLeavesNothingBehind()
    {
        var slots = new TestSlots(capacity: 1, share: 1, _clock);
        var holder = (await slots.TryEnterAsync(1, default))!;
        var waiting = slots.TryEnterAsync(2, default);

        _clock.Advance(TimeSpan.FromSeconds(9));
        Assert.False(waiting.IsCompleted, "gave up before the wait ran out");
        _clock.Advance(TimeSpan.FromSeconds(1));

        Assert.Null(await waiting.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, slots.Waiting);
        Assert.Equal(0, slots.HeldBy(2));
        holder.Dispose();
        Assert.Equal(0, slots.InUse); // the slot was not handed to the request that gave up
    }

    [Fact]
    public async Task AClientThatLeavesStopsWaiting()
    {
        var slots = new TestSlots(capacity: 1, share: 1, _clock);
        using var holder = await slots.TryEnterAsync(1, default);
        using var left = new CancellationTokenSource();
        var waiting = slots.TryEnterAsync(2, left.Token);

        await left.CancelAsync();

        Assert.Null(await waiting.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, slots.Waiting);
    }

    [Fact]
    public async Task DisposingALeaseTwiceReleasesOneSlot()
    {
        var slots = new TestSlots(capacity: 2, share: 2, _clock);
        var lease = (await slots.TryEnterAsync(1, default))!;
        using var other = await slots.TryEnterAsync(1, default);

        lease.Dispose();
        lease.Dispose();

        Assert.Equal(1, slots.InUse);
    }

    [Fact]
    public async Task ManyTenantsRacingAreAllServedNeverMoreThanCapacityOrShareAtOnce()
    {
        var seed = Environment.TickCount;
        Console.WriteLine($"FairSlots race seed: {seed}");
        var random = new Random(seed);
        var slots = new TestSlots(capacity: 3, share: 2, TimeProvider.System);
        var running = 0;
        var maxRunning = 0;
        var perTenant = new int[5];
        var overShare = 0;
        var granted = 0;
        var requests = Enumerable.Range(0, 200).Select(_ => (Tenant: random.Next(5), DelayMs: random.Next(0, 3))).ToArray();
        var tasks = requests.Select(request => Task.Run(async () =>
        {
            var tenant = request.Tenant;
            using var lease = await slots.TryEnterAsync(tenant, default);
            if (lease is null)
            {
                return;
            }

            // Counted here, by the holders themselves, not by the slots' own bookkeeping.
            Interlocked.Increment(ref granted);
            InterlockedMax(ref maxRunning, Interlocked.Increment(ref running));
            if (Interlocked.Increment(ref perTenant[tenant]) > 2)
            {
                Interlocked.Increment(ref overShare);
            }

            await Task.Delay(request.DelayMs);
            Interlocked.Decrement(ref perTenant[tenant]);
            Interlocked.Decrement(ref running);
        }));

        await Task.WhenAll(tasks);

        Assert.True(granted == 200, $"{granted} of 200 requests were served (seed {seed})");
        Assert.True(maxRunning <= 3, $"{maxRunning} holders at once (seed {seed})");
        Assert.Equal(0, overShare);
        Assert.Equal(0, slots.InUse);
        Assert.Equal(0, slots.Waiting);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    private sealed class TestSlots(int capacity, int share, TimeProvider clock) : FairSlots(capacity, share, clock);
}
