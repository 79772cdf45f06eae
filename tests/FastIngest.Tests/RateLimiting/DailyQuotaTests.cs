using System.Net;
using FastIngest.RateLimiting;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.RateLimiting;

public sealed class DailyQuotaTests
{
    [Fact]
    public void AnOrgsRowsAreCountedPerUtcDayAndRefusalsSayWhenItResets()
    {
        var clock = new ManualClock();
        clock.Advance(new DateTimeOffset(2026, 11, 25, 23, 0, 0, TimeSpan.Zero) - clock.GetUtcNow());
        var quota = new DailyQuota(new FastIngest.Configuration.ServerOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            DataDirectory = "unused",
            RowsPerOrgPerDay = 10,
        }, clock);

        Assert.Null(quota.TryReserve(1, 6, 1_000_000)); // no byte quota set: bytes are not counted
        Assert.Null(quota.TryReserve(2, 10, 0)); // another org has its own count
        Assert.Equal(3600, quota.TryReserve(1, 5, 0)); // 11 > 10: an hour until 00:00 UTC
        quota.Release(1, 6, 1_000_000); // that run turned out a duplicate
        Assert.Null(quota.TryReserve(1, 10, 0));

        clock.Advance(TimeSpan.FromHours(1));
        Assert.Null(quota.TryReserve(1, 10, 0)); // a new day
        Assert.NotNull(quota.TryReserve(1, 11, 0)); // a run bigger than the whole quota never fits
    }

    [Fact]
    public void BytesAreABudgetOfTheirOwnAndEitherOneRefuses()
    {
        var quota = new DailyQuota(new FastIngest.Configuration.ServerOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            DataDirectory = "unused",
            RowsPerOrgPerDay = 100,
            BytesPerOrgPerDay = 1000,
        }, new ManualClock());

        Assert.Null(quota.TryReserve(1, 1, 900));
        Assert.NotNull(quota.TryReserve(1, 1, 200)); // rows fit, bytes do not
        Assert.NotNull(quota.TryReserve(1, 100, 1)); // bytes fit, rows do not
        quota.Release(1, 1, 900);
        Assert.Null(quota.TryReserve(1, 99, 1000));
    }

    [Fact]
    public async Task IngestPastTheByteQuotaIs429WhileARetryIsStillADuplicate()
    {
        var first = TestServer.Run("bytes-1");
        await using var server = await TestServer.StartAsync(configure: o => o with { BytesPerOrgPerDay = (2 * first.Length) + 10 });
        var tenant = await server.CreateTenantAsync("quota-bytes");
        foreach (var runId in new[] { "bytes-1", "bytes-2" })
        {
            using var stored = await server.IngestAsync(tenant.ProjectToken, TestServer.Run(runId));
            await Json.ReadAsync(stored, HttpStatusCode.Created);
        }

        using (var over = await server.IngestAsync(tenant.ProjectToken, TestServer.Run("bytes-3")))
        {
            var problem = await Json.ReadProblemAsync(over, HttpStatusCode.TooManyRequests);
            Assert.Contains("bytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        using var retry = await server.IngestAsync(tenant.ProjectToken, first);
        await Json.ReadAsync(retry, HttpStatusCode.OK);
    }

    [Fact]
    public async Task IngestPastTheQuotaIs429AndRetriesAndOtherOrgsAreNotCharged()
    {
        await using var server = await TestServer.StartAsync(configure: o => o with { RowsPerOrgPerDay = 5 });
        var heavy = await server.CreateTenantAsync("quota-heavy");
        var other = await server.CreateTenantAsync("quota-other");
        var withThreeTests = TestServer.Run("q-1").Replace("}", ",\"tests\":[" + string.Join(',', Enumerable.Range(0, 3)
            .Select(i => $$"""{"name":"t{{i}}","status":"passed","duration_ms":1}""")) + "]}", StringComparison.Ordinal);

        using (var first = await server.IngestAsync(heavy.ProjectToken, withThreeTests))
        {
            await Json.ReadAsync(first, HttpStatusCode.Created); // 4 rows of 5
        }

        using (var retry = await server.IngestAsync(heavy.ProjectToken, withThreeTests))
        {
            await Json.ReadAsync(retry, HttpStatusCode.OK); // a duplicate stores nothing and costs nothing
        }

        using (var changed = await server.IngestAsync(heavy.ProjectToken, withThreeTests.Replace("1234", "999", StringComparison.Ordinal)))
        {
            await Json.ReadProblemAsync(changed, HttpStatusCode.Conflict); // over the quota a conflict is still a conflict
        }

        using (var over = await server.IngestAsync(heavy.ProjectToken, withThreeTests.Replace("q-1", "q-2", StringComparison.Ordinal)))
        {
            await Json.ReadProblemAsync(over, HttpStatusCode.TooManyRequests);
            Assert.NotNull(over.Headers.RetryAfter);
        }

        using (var fits = await server.IngestAsync(heavy.ProjectToken, TestServer.Run("q-3")))
        {
            await Json.ReadAsync(fits, HttpStatusCode.Created); // the refused run was not charged: 5 of 5
        }

        using (var full = await server.IngestAsync(heavy.ProjectToken, withThreeTests))
        {
            await Json.ReadAsync(full, HttpStatusCode.OK); // at the quota, a retry of a stored run is still a duplicate
        }

        using var elsewhere = await server.IngestAsync(other.ProjectToken, withThreeTests);
        await Json.ReadAsync(elsewhere, HttpStatusCode.Created);
    }
}
