using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace FastIngest.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL server for the test run, started once per process on first use: <c>initdb</c> into a
/// temp directory (as the unprivileged <c>postgres</c> user when the tests run as root), a free port, sockets in
/// the same directory, torn down (<c>pg_ctl stop -m immediate</c>) and deleted when the process exits. Nothing is
/// left running and no system cluster is touched. Each test gets databases of its own (<see cref="CreateDatabaseAsync"/>).
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
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(static d => Path.Combine(d, "bin")).Where(static b => File.Exists(Path.Combine(b, "initdb")))
                .OrderByDescending(static b => b, StringComparer.Ordinal).FirstOrDefault()
            : null;
        if (bin is null)
        {
            throw new InvalidOperationException("PostgreSQL is not installed (Debian's 'postgresql' package; ./build.sh test installs it).");
        }

        var dir = Directory.CreateTempSubdirectory("fastingest-pg-").FullName;
        var data = Path.Combine(dir, "data");
        var port = FreePort();
        var asRoot = Environment.UserName == "root";
        if (asRoot)
        {
            Run("chown", $"postgres {dir}");
        }

        RunAs(asRoot, $"{bin}/initdb -D {data} -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8");
        // Output goes to a file, not a pipe: the server pg_ctl leaves running would hold a pipe open.
        RunAs(asRoot, $"{bin}/pg_ctl -D {data} -l {dir}/server.log -w -o \"-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300\" start");
        var server = new Server(bin, dir, data, port, asRoot);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        return server;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
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
            $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=true;Maximum Pool Size=50";

        public void Stop()
        {
            try
            {
                RunAs(AsRoot, $"{Bin}/pg_ctl -D {Data} -m immediate -w stop");
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
