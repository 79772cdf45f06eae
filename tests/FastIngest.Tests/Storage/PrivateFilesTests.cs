using System.Net;
using FastIngest.Tests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace FastIngest.Tests.Storage;

/// <summary>Every tenant's data and every token hash: readable by the server's user only.</summary>
public sealed class PrivateFilesTests
{
    private const UnixFileMode Owner = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerDirectory = Owner | UnixFileMode.UserExecute;
    private const UnixFileMode Loose = Owner | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    [Fact]
    public async Task DatabaseWalShmAndBackupsAreOwnerOnlyAndLooseOnesAreTightenedAtStart()
    {
        var dir = Path.Combine(Directory.CreateTempSubdirectory("fastingest-modes-").FullName, "data");
        var admin = FastIngest.Auth.ApiTokenFormat.Generate(FastIngest.Auth.TokenScope.Admin).Token;
        string backup;
        await using (var server = await TestServer.StartAsync(dir, admin))
        {
            var tenant = await server.CreateTenantAsync("modes");
            using (var run = await server.IngestAsync(tenant.ProjectToken, TestServer.Run("m-1")))
            {
                await Json.ReadAsync(run, HttpStatusCode.Created);
            }

            using var backed = await server.SendAsync(HttpMethod.Post, "/v1/admin/backup", admin, "{}");
            backup = (await server.FinishJobAsync(backed, admin)).GetProperty("path").GetString()!;

            AssertMode(dir, OwnerDirectory);
            foreach (var file in new[] { "fastingest.db", "fastingest.db-wal", "fastingest.db-shm" })
            {
                AssertMode(Path.Combine(dir, file), Owner);
            }

            AssertMode(Path.GetDirectoryName(backup)!, OwnerDirectory);
            AssertMode(backup, Owner);
        }

        // A database left readable by an older version (or a careless copy) is tightened at the next start.
        SqliteConnection.ClearAllPools();
        File.SetUnixFileMode(dir, OwnerDirectory | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        File.SetUnixFileMode(Path.Combine(dir, "fastingest.db"), Loose);
        await using (await TestServer.StartAsync(dir, admin))
        {
            AssertMode(dir, OwnerDirectory);
            AssertMode(Path.Combine(dir, "fastingest.db"), Owner);
        }

        SqliteConnection.ClearAllPools();
        Directory.Delete(Path.GetDirectoryName(dir)!, recursive: true);
    }

    private static void AssertMode(string path, UnixFileMode expected)
    {
        var actual = File.GetUnixFileMode(path);
        Assert.True(actual == expected, $"{path}: mode {Convert.ToString((int)actual, 8)}, expected {Convert.ToString((int)expected, 8)}");
    }
}
