using System.Diagnostics;
using Npgsql;

namespace FastIngest.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL server for the test run, started once per process on first use: <c>initdb</c> into a
/// temp directory (as the unprivileged <c>postgres</c> user when the tests run as root), reachable only through a
/// Unix socket in that directory (no TCP port, so nothing to race for), torn down (<c>pg_ctl stop -m immediate</c>)
/// and deleted when the process exits. A server left behind by a test process that died is stopped by the next
/// run (each directory records its owner's pid). No system cluster is touched. Each test gets databases of its own (<see cref="CreateDatabaseAsync"/>).
/// Needs Debian's <c>postgresql</c> package, which <c>./build.sh test</c> installs.
/// </summary>
public static class PostgresCluster
{
    private static readonly Lazy<Server> s_server = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>A new empty database on the shared server; returns its connection string.</summary>
    public static async Task<string> CreateDatabaseAsync(string prefix)
    {
        var server = s_server.Value;
        var name = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 33, 63)].ToLowerInvariant();
        await using (var admin = new NpgsqlConnection(server.ConnectionString("postgres")))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\";", admin);
            await create.ExecuteNonQueryAsync();
        }

        return server.ConnectionString(name);
    }

    private static Server Start()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Where(static d => File.Exists(Path.Combine(d, "bin", "initdb")))
                .OrderByDescending(static d => Version.TryParse(Path.GetFileName(d).Contains('.', StringComparison.Ordinal) ? Path.GetFileName(d) : Path.GetFileName(d) + ".0", out var v) ? v : new Version())
                .Select(static d => Path.Combine(d, "bin")).FirstOrDefault()
            : null;
        if (bin is null)
        {
            throw new InvalidOperationException("PostgreSQL is not installed (Debian's 'postgresql' package; ./build.sh test installs it).");
        }

        var asRoot = Environment.UserName == "root";
        StopAbandoned(bin, asRoot);
        var dir = Directory.CreateTempSubdirectory("fastingest-pg-").FullName;
        File.WriteAllText(Path.Combine(dir, "owner.pid"), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var data = Path.Combine(dir, "data");
        const int port = 5432; // only names the socket file in our own directory
        if (asRoot)
        {
            Run("chown", $"postgres {dir}");
        }

        RunAs(asRoot, $"{bin}/initdb -D {data} -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8");
        // Output goes to a file, not a pipe: the server pg_ctl leaves running would hold a pipe open.
        RunAs(asRoot, $"{bin}/pg_ctl -D {data} -l {dir}/server.log -w -o \"-p {port} -k {dir} -c listen_addresses='' -c fsync=off -c max_connections=600\" start");
        var server = new Server(bin, dir, data, port, asRoot);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        return server;
    }

    /// <summary>Stops and deletes clusters whose test process is gone (a crash or a killed run skips ProcessExit).</summary>
    private static void StopAbandoned(string bin, bool asRoot)
    {
        foreach (var dir in Directory.GetDirectories(Path.GetTempPath(), "fastingest-pg-*"))
        {
            var owner = Path.Combine(dir, "owner.pid");
            if (File.Exists(owner) && int.TryParse(File.ReadAllText(owner), out var pid) && IsAlive(pid))
            {
                continue;
            }

            new Server(bin, dir, Path.Combine(dir, "data"), 5432, asRoot).Stop();
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static void RunAs(bool asRoot, string command)
    {
        if (asRoot)
        {
            Run("su", $"postgres -s /bin/sh -c \"{command.Replace("\"", "\\\"", StringComparison.Ordinal)}\"");
        }
        else
        {
            Run("/bin/sh", $"-c \"{command.Replace("\"", "\\\"", StringComparison.Ordinal)}\"");
        }
    }

    private static void Run(string file, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(60_000))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"'{file} {arguments}' did not finish in 60 s");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"'{file} {arguments}' exited {process.ExitCode}: {output.Result}{error.Result}");
        }
    }

    private sealed record Server(string Bin, string Dir, string Data, int Port, bool AsRoot)
    {
        public string ConnectionString(string database) =>
            $"Host={Dir};Port={Port};Username=postgres;Database={database};Pooling=true;Maximum Pool Size=12";

        public void Stop()
        {
            try
            {
                if (File.Exists(Path.Combine(Data, "postmaster.pid")))
                {
                    RunAs(AsRoot, $"{Bin}/pg_ctl -D {Data} -m immediate -w stop");
                }
            }
            catch (InvalidOperationException)
            {
                // Already gone; the directory still goes.
            }

            try
            {
                Directory.Delete(Dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
