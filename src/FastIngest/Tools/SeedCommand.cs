using System.Diagnostics;
using FastIngest.Auth;
using FastIngest.Configuration;
using FastIngest.Ingest;
using FastIngest.Storage;
using FastIngest.Storage.Sqlite;

namespace FastIngest.Tools;

/// <summary>
/// <c>fastingest seed --runs 1000000 [--days 90] [--data ./data]</c>: creates an org and a project and fills it
/// with generated runs (90% passed, log-normal durations, two branches, spread over the last N days) through
/// the same batch writer path as ingest, for read-side benchmarks. Prints the project id and a read token.
/// </summary>
public static class SeedCommand
{
    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter output)
    {
        var runs = 1_000_000;
        var days = 90;
        var data = "data";
        for (var i = 0; i + 1 < args.Count; i += 2)
        {
            switch (args[i])
            {
                case "--runs" when int.TryParse(args[i + 1], out var r) && r > 0: runs = r; break;
                case "--days" when int.TryParse(args[i + 1], out var d) && d > 0: days = d; break;
                case "--data": data = args[i + 1]; break;
                default:
                    output.WriteLine($"fastingest seed: bad option '{args[i]} {args[i + 1]}'. Usage: fastingest seed --runs N [--days D] [--data DIR]");
                    return 2;
            }
        }

        using var database = new SqliteDatabase(Path.Combine(Path.GetFullPath(data), "fastingest.db"), DurabilityMode.Normal);
        database.Migrate();
        using var store = new SqliteRunBatchStore(database, DurabilityMode.Normal);
        var tenants = new SqliteTenantStore(database, new SqliteWrites(new InlineStorageWriter(store), store)); // the only writer here
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var (result, org) = await tenants.CreateOrgAsync($"seed-{now}", now);
        var (_, project) = await tenants.CreateProjectAsync(org!.Key, "seeded", now);
        var (token, _) = (await new TokenIssuer(tenants, TimeProvider.System, new SecretHasher()).IssueUnpooledAsync(TokenScope.Read, org.Key, project!.Key, "seed", null))!.Value;

        var random = new Random(42);
        const int Batch = 5000;
        var buffer = new RunRecord[Batch];
        var outcomes = new RunWriteOutcome[Batch];
        var span = days * 24L * 60 * 60 * 1000;
        var watch = Stopwatch.StartNew();
        for (var written = 0; written < runs; written += Batch)
        {
            var count = Math.Min(Batch, runs - written);
            for (var i = 0; i < count; i++)
            {
                var n = written + i;
                var passed = random.NextDouble() < 0.9;
                // Log-normal around ~2 minutes: most CI runs are short, a few are very long.
                var duration = (long)Math.Min(IngestFields.MaxDurationMs, Math.Exp(11.7 + (random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5)));
                var timestamp = now - span + (span * n / runs);
                var branch = n % 4 == 0 ? "feature/x" : "main";
                buffer[i] = new RunRecord
                {
                    ProjectKey = project.Key,
                    RunId = $"seed-{n}",
                    Passed = passed,
                    DurationMs = duration,
                    TimestampMs = timestamp,
                    Branch = branch,
                    // Ingest hashes the instant as UtcTicks (since year 1), not ticks since 1970: a seeded run posted
                    // again must be a duplicate, not a conflict.
                    Fingerprint = RunFingerprint.Compute(passed, duration, DateTimeOffset.FromUnixTimeMilliseconds(timestamp).UtcTicks, branch, null, null),
                    ReceivedAtMs = now,
                };
            }

            store.Commit(buffer.AsSpan(0, count), outcomes.AsSpan(0, count));
        }

        store.MakeDurable();
        output.WriteLine($"seeded {runs} runs over {days} days in {watch.Elapsed.TotalSeconds:F1} s ({runs / watch.Elapsed.TotalSeconds:F0} runs/s)");
        output.WriteLine($"project_id {project.Id}");
        output.WriteLine($"read_token {token}");
        return result == CreateResult.Created ? 0 : 1;
    }
}
