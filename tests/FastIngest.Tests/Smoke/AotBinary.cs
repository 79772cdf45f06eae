using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace FastIngest.Tests.Smoke;

/// <summary>The published Native AOT binary, started as a separate process on a free port.</summary>
public sealed class AotBinary : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _stdout = new();
    private readonly ConcurrentQueue<string> _stderr = new();

    private AotBinary(Process process, Uri address, string dataDirectory)
    {
        _process = process;
        Address = address;
        DataDirectory = dataDirectory;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) _stdout.Enqueue(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) _stderr.Enqueue(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public Uri Address { get; }

    public string DataDirectory { get; }

    public IReadOnlyCollection<string> Stdout => _stdout;

    public IReadOnlyCollection<string> Stderr => _stderr;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public int Id => _process.Id;

    /// <summary>The binary under test: $FASTINGEST_BINARY, else ./publish/fastingest from the repository root.</summary>
    public static string Path
    {
        get
        {
            var configured = Environment.GetEnvironmentVariable("FASTINGEST_BINARY");
            if (!string.IsNullOrEmpty(configured))
            {
                return configured;
            }

            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "FastIngest.sln")))
            {
                dir = dir.Parent;
            }

            var candidate = System.IO.Path.Combine(dir?.FullName ?? ".", "publish", "fastingest");
            Assert.True(File.Exists(candidate), $"No AOT binary at {candidate}: run ./build.sh test (it publishes first) or set FASTINGEST_BINARY.");
            return candidate;
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static AotBinary Start(string? dataDirectory = null, string? adminToken = null, params string[] extraArgs)
    {
        dataDirectory ??= Directory.CreateTempSubdirectory("fastingest-aot-").FullName;
        var port = FreePort();
        var info = new ProcessStartInfo(Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in (string[])["--listen", $"127.0.0.1:{port}", "--data", dataDirectory, .. extraArgs])
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment.Remove("FASTINGEST_ADMIN_TOKEN");
        if (adminToken is not null)
        {
            info.Environment["FASTINGEST_ADMIN_TOKEN"] = adminToken;
        }

        return new AotBinary(Process.Start(info)!, new Uri($"http://127.0.0.1:{port}"), dataDirectory);
    }

    /// <summary>Polls /healthz until it answers 200; returns how long that took from now.</summary>
    public async Task<TimeSpan> WaitUntilHealthyAsync(HttpClient client)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(20))
        {
            Assert.False(_process.HasExited, $"the server exited early: {string.Join('\n', _stderr)}");
            try
            {
                using var response = await client.GetAsync(new Uri(Address, "/healthz"));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return watch.Elapsed;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(10);
        }

        throw new TimeoutException("the AOT binary did not become healthy within 20 s");
    }

    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", $"-{signal} {_process.Id}");
        kill.WaitForExit();
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        _process.WaitForExit(); // flushes the redirected output
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
