using FastIngest;
using FastIngest.Auth;
using FastIngest.Configuration;
using FastIngest.Ingest;

if (args is ["--help"] or ["-h"])
{
    Console.WriteLine(ServerOptionsParser.HelpText);
    return 0;
}

if (args is ["--version"])
{
    Console.WriteLine($"fastingest {ThisBuild.Version}");
    return 0;
}

if (args is ["new-admin-token"])
{
    Console.WriteLine(ApiTokenFormat.Generate(TokenScope.Admin).Token);
    return 0;
}

if (args is ["upload", ..])
{
    return await FastIngest.Upload.UploadCommand.RunAsync(args[1..], Environment.GetEnvironmentVariable, Console.Out, Console.Error);
}

if (args is ["seed", ..])
{
    return await FastIngest.Tools.SeedCommand.RunAsync(args[1..], Console.Out);
}

if (!ServerOptionsParser.TryParse(args, Environment.GetEnvironmentVariable, out var options, out var error))
{
    Console.Error.WriteLine($"fastingest: {error}. See 'fastingest --help'.");
    return 2;
}

// Request threads still block on SQLite and on file I/O. With the pool's default minimum (one thread per core),
// four gzip-bomb uploads on a one-core box queued every other tenant's requests for 200+ ms until the pool grew
// (load/noisy_neighbours.sh: quiet p99 202 ms before, 9 ms with this floor).
ThreadPool.GetMinThreads(out var workers, out var completionPorts);
ThreadPool.SetMinThreads(Math.Max(workers, 8 * Environment.ProcessorCount), completionPorts);

WebApplication app;
try
{
    app = FastIngestServer.Build(options!, Console.Out);
}
catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"fastingest: cannot start: {e.Message}");
    return 1;
}

await using (app)
{
    try
    {
        await app.StartAsync();
    }
    catch (IOException e)
    {
        Console.Error.WriteLine($"fastingest: cannot listen on {options!.Listen}: {e.Message}");
        return 1;
    }

    var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("FastIngest");
    var address = FastIngestServer.BoundAddress(app).ToString();
    var durability = options!.Durability == DurabilityMode.Full ? "full" : "normal";
    var database = options.Postgres is null
        ? options.DatabasePath
        : "postgresql://" + app.Services.GetRequiredService<FastIngest.Storage.Postgres.PostgresDatabase>().Description; // never the password
    Log.Listening(logger, ThisBuild.Version, address, database, options.Postgres is null ? durability : "postgresql");
    if (options.Postgres is null && FastIngest.Storage.Sqlite.SqliteDatabase.ConfigurationFailure is { } why)
    {
        Log.SqliteSerialized(logger, why);
    }

    // Returns after SIGTERM/SIGINT once Kestrel has stopped accepting and every in-flight request has its
    // answer; then the ingest writer commits whatever is still queued before the process exits.
    await app.WaitForShutdownAsync();
    await app.Services.GetRequiredService<RunBatchWriter>().DisposeAsync();
    Log.Stopped(logger);
}

return 0;
