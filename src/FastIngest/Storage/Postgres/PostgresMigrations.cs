using Npgsql;

namespace FastIngest.Storage.Postgres;

/// <summary>
/// The PostgreSQL schema, versioned like the SQLite one: <c>fastingest_schema.version</c> says which steps ran; each
/// pending step runs in its own transaction; a database newer than this binary is refused. Several nodes starting
/// at once serialize on an advisory lock, so each step runs once.
/// </summary>
public static class PostgresMigrations
{
    /// <summary>The advisory lock the migrating node holds ("fastingest" in ASCII).</summary>
    private const long LockKey = 0x66617374696e6765;

    private static readonly string[] s_steps =
    [
        // 1: tenancy, tokens, confirm tokens and the server's secrets. Keys come from identity columns, which never
        // hand a number out twice, so a deleted project's key is never a new project's.
        """
        CREATE TABLE orgs (
            id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            public_id   TEXT   NOT NULL UNIQUE,
            name        TEXT   NOT NULL,
            created_at  BIGINT NOT NULL,
            deleted_at  BIGINT
        );
        CREATE UNIQUE INDEX orgs_live_name ON orgs (name) WHERE deleted_at IS NULL;
        CREATE TABLE projects (
            id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            public_id       TEXT    NOT NULL UNIQUE,
            org_id          BIGINT  NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            name            TEXT    NOT NULL,
            created_at      BIGINT  NOT NULL,
            retention_days  INTEGER,
            deleted_at      BIGINT
        );
        CREATE UNIQUE INDEX projects_live_name ON projects (org_id, name) WHERE deleted_at IS NULL;
        CREATE TABLE api_tokens (
            id            TEXT   PRIMARY KEY,
            secret_hash   TEXT   NOT NULL,
            scope         TEXT   NOT NULL CHECK (scope IN ('admin', 'org', 'ingest', 'read')),
            org_id        BIGINT REFERENCES orgs(id) ON DELETE CASCADE,
            project_id    BIGINT REFERENCES projects(id) ON DELETE CASCADE,
            name          TEXT,
            created_at    BIGINT NOT NULL,
            expires_at    BIGINT,
            last_used_at  BIGINT,
            revoked_at    BIGINT
        );
        CREATE INDEX api_tokens_by_project ON api_tokens (project_id);
        CREATE INDEX api_tokens_by_org ON api_tokens (org_id);
        CREATE TABLE confirm_tokens (
            token_hash     TEXT   PRIMARY KEY,
            action         TEXT   NOT NULL,
            target         TEXT   NOT NULL,
            credential_id  TEXT   NOT NULL,
            summary        TEXT   NOT NULL,
            created_at     BIGINT NOT NULL,
            expires_at     BIGINT NOT NULL,
            used_at        BIGINT
        );
        CREATE TABLE server_secrets (
            name   TEXT  PRIMARY KEY,
            value  BYTEA NOT NULL
        );
        """,
    ];

    public static int LatestVersion => s_steps.Length;

    public static async Task ApplyAsync(NpgsqlConnection connection, CancellationToken cancellation)
    {
        await ExecuteAsync(connection, null, $"SELECT pg_advisory_lock({LockKey});", cancellation);
        try
        {
            await ExecuteAsync(connection, null, "CREATE TABLE IF NOT EXISTS fastingest_schema (version INTEGER NOT NULL);", cancellation);
            var version = await VersionAsync(connection, cancellation);
            if (version > LatestVersion)
            {
                throw new InvalidOperationException(
                    $"the database has FastIngest schema {version}, newer than this binary's {LatestVersion}; run a newer FastIngest.");
            }

            for (var step = version; step < LatestVersion; step++)
            {
                await using var transaction = await connection.BeginTransactionAsync(cancellation);
                await ExecuteAsync(connection, transaction, s_steps[step], cancellation);
                if (step == 0)
                {
                    // The key that authenticates paging cursors: 256 random bits from this process (pgcrypto may
                    // not be installed), shared by every node.
                    await using var secret = new NpgsqlCommand("INSERT INTO server_secrets (name, value) VALUES ('cursor', $1);", connection, transaction);
                    secret.Parameters.Add(new NpgsqlParameter { Value = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32) });
                    await secret.ExecuteNonQueryAsync(cancellation);
                }

                await ExecuteAsync(connection, transaction,
                    $"DELETE FROM fastingest_schema; INSERT INTO fastingest_schema (version) VALUES ({step + 1});", cancellation);
                await transaction.CommitAsync(cancellation);
            }
        }
        finally
        {
            await ExecuteAsync(connection, null, $"SELECT pg_advisory_unlock({LockKey});", CancellationToken.None);
        }
    }

    /// <summary>The applied version (0 for an empty database).</summary>
    public static async Task<int> VersionAsync(NpgsqlConnection connection, CancellationToken cancellation)
    {
        await using var command = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM fastingest_schema;", connection);
        return Convert.ToInt32(await command.ExecuteScalarAsync(cancellation), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellation)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellation);
    }
}
