using FastIngest.Storage.Postgres;
using FastIngest.Tests.Infrastructure;
using Npgsql;

namespace FastIngest.Tests.Storage.Contract;

/// <summary>Bad PostgreSQL configuration gets one clear message at startup, never a stack trace.</summary>
public sealed class PostgresStartupTests
{
    [Fact]
    public async Task AnUnreachableServerIsNamedInTheMessage()
    {
        await using var database = PostgresDatabase.Create("Host=127.0.0.1;Port=1;Username=postgres;Database=x;Timeout=2");
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => database.MigrateAsync());
        Assert.StartsWith("cannot reach PostgreSQL at 127.0.0.1:1/x", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMissingDatabaseSaysToCreateIt()
    {
        var existing = new NpgsqlConnectionStringBuilder(await PostgresCluster.CreateDatabaseAsync("startup")) { Database = "no_such_database" };
        await using var database = PostgresDatabase.Create(existing.ConnectionString);
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => database.MigrateAsync());
        Assert.Contains("the database does not exist", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASchemaNewerThanTheBinaryIsRefusedAndTwoNodesMigrateOnce()
    {
        var connection = await PostgresCluster.CreateDatabaseAsync("startup");
        await using (var first = PostgresDatabase.Create(connection))
        await using (var second = PostgresDatabase.Create(connection))
        {
            await Task.WhenAll(first.MigrateAsync(), second.MigrateAsync()); // serialized by the advisory lock
            await using var check = await first.DataSource.OpenConnectionAsync();
            Assert.Equal(PostgresMigrations.LatestVersion, await PostgresMigrations.VersionAsync(check, CancellationToken.None));
            await using var bump = new NpgsqlCommand($"UPDATE fastingest_schema SET version = {PostgresMigrations.LatestVersion + 1};", check);
            await bump.ExecuteNonQueryAsync();
        }

        await using var newer = PostgresDatabase.Create(connection);
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => newer.MigrateAsync());
        Assert.Contains($"newer than this binary's {PostgresMigrations.LatestVersion}", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("postgres://ci:s%3Acret@db.internal:6432/results?sslmode=require",
        "Host=db.internal;Port=6432;Database=results;Username=ci;Password=s:cret;SSL Mode=Require")]
    [InlineData("postgresql://db.internal/results", "Host=db.internal;Port=5432;Database=results")]
    [InlineData("Host=h;Username=u", "Host=h;Username=u")]
    public void AUrlBecomesTheSameConnectionAsItsKeywords(string given, string expected)
    {
        var parsed = new NpgsqlConnectionStringBuilder(PostgresDatabase.ToKeywords(given));
        var wanted = new NpgsqlConnectionStringBuilder(expected);
        Assert.True(parsed.EquivalentTo(wanted), $"got '{parsed.ConnectionString}', want '{wanted.ConnectionString}'");
    }
}
