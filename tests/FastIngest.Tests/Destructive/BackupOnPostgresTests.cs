using System.Net;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Destructive;

/// <summary>PostgreSQL is backed up with its own tools: the backup route says so at once instead of starting a job that fails.</summary>
public sealed class BackupOnPostgresTests
{
    [Fact]
    public async Task ABackupRequestOnPostgresIsAConflictThatNamesPgDump()
    {
        await using var server = await TestServer.StartAsync(postgres: await PostgresCluster.CreateDatabaseAsync("backup"));

        using var response = await server.SendAsync(HttpMethod.Post, "/v1/admin/backup", server.AdminToken);

        var problem = await Json.ReadAsync(response, HttpStatusCode.Conflict);
        Assert.Contains("pg_dump", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.EndsWith("backup-not-available", problem.GetProperty("type").GetString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(server.Options.DataDirectory, "backups")), "a backup directory was created");
    }
}
