namespace FastIngest.Tests.Infrastructure;

/// <summary>Waits on observable server state (a slot held, a counter moved), never on a fixed sleep.</summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<bool> condition, string what, TimeSpan? limit = null)
    {
        var until = DateTime.UtcNow + (limit ?? TimeSpan.FromSeconds(10));
        while (!condition() && DateTime.UtcNow < until)
        {
            await Task.Delay(10);
        }

        Assert.True(condition(), $"timed out waiting for {what}");
    }
}
