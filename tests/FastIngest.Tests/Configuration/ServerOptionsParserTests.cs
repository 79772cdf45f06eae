using FastIngest.Configuration;

namespace FastIngest.Tests.Configuration;

public sealed class ServerOptionsParserTests
{
    private static readonly Func<string, string?> s_noEnvironment = _ => null;

    [Fact]
    public void DefaultsListenOnLoopback8080WithDataUnderTheWorkingDirectory()
    {
        Assert.True(ServerOptionsParser.TryParse([], s_noEnvironment, out var options, out _));
        Assert.Equal("127.0.0.1:8080", options!.Listen.ToString());
        Assert.Equal(Path.GetFullPath("data/fastingest.db"), options.DatabasePath);
        Assert.Equal(DurabilityMode.Full, options.Durability);
    }

    [Fact]
    public void FlagsWinOverEnvironmentWhichWinsOverDefaults()
    {
        var env = new Dictionary<string, string> { ["FASTINGEST_LISTEN"] = "0.0.0.0:9000", ["FASTINGEST_DATA"] = "/tmp/env-data", ["FASTINGEST_DURABILITY"] = "normal" };
        Assert.True(ServerOptionsParser.TryParse(["--listen", "127.0.0.1:7000"], k => env.GetValueOrDefault(k), out var options, out _));
        Assert.Equal("127.0.0.1:7000", options!.Listen.ToString());
        Assert.Equal("/tmp/env-data", options.DataDirectory);
        Assert.Equal(DurabilityMode.Normal, options.Durability);
    }

    [Fact]
    public void TrustedProxiesTakeAddressesAndRanges()
    {
        Assert.True(ServerOptionsParser.TryParse(["--trusted-proxies", "10.0.0.5, 10.1.0.0/16,::1"], s_noEnvironment, out var options, out var error), error);
        Assert.Equal(["10.0.0.5/32", "10.1.0.0/16", "::1/128"], options!.TrustedProxies.Select(n => n.ToString()));
        Assert.True(ServerOptionsParser.TryParse([], s_noEnvironment, out var none, out _));
        Assert.Empty(none!.TrustedProxies);
    }

    [Fact]
    public void TestStateRulesComeFromFlagsAndDefaultToHalfThreeAndAWeek()
    {
        Assert.True(ServerOptionsParser.TryParse(
            ["--infra-failure-percent", "80", "--broken-min-executions", "5", "--fixed-after-days", "14"], s_noEnvironment, out var options, out var error), error);
        Assert.Equal((0.8, 5, 14), (options!.TestStates.InfraFailureShare, options.TestStates.BrokenMinExecutions, options.TestStates.FixedAfterDays));
        Assert.True(ServerOptionsParser.TryParse([], s_noEnvironment, out var defaults, out _));
        Assert.Equal((0.5, 3, 7), (defaults!.TestStates.InfraFailureShare, defaults.TestStates.BrokenMinExecutions, defaults.TestStates.FixedAfterDays));
    }

    [Theory]
    [InlineData("--infra-failure-percent", "0", "--infra-failure-percent")]
    [InlineData("--fixed-after-days", "400", "--fixed-after-days")]
    [InlineData("--listen", "nonsense", "--listen")]
    [InlineData("--listen", "127.0.0.1", "--listen")]
    [InlineData("--durability", "sometimes", "--durability")]
    [InlineData("--log-level", "loud", "--log-level")]
    [InlineData("--batch", "0", "--batch")]
    [InlineData("--bogus", "1", "--bogus")]
    [InlineData("--trusted-proxies", "10.0.0.0/33", "--trusted-proxies")]
    [InlineData("--metrics-listen", "127.0.0.1:8080", "--metrics-listen")]
    [InlineData("--metrics-listen", "127.0.0.1:0", "--metrics-listen")]
    [InlineData("--trusted-proxies", "proxy.internal", "--trusted-proxies")]
    public void BadFlagsAreRefusedNamingTheFlag(string flag, string value, string named)
    {
        Assert.False(ServerOptionsParser.TryParse([flag, value], s_noEnvironment, out _, out var error));
        Assert.Contains(named, error, StringComparison.Ordinal);
    }

    [Fact]
    public void EqualsSyntaxAndMetricsListenAreAccepted()
    {
        Assert.True(ServerOptionsParser.TryParse(["--listen=:8081", "--metrics-listen=127.0.0.1:9100"], s_noEnvironment, out var options, out _));
        Assert.Equal(8081, options!.Listen.Port);
        Assert.Equal(9100, options.MetricsListen!.Port);
    }
}
