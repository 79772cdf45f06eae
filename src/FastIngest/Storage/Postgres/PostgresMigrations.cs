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

        // 2: runs (a sharded run is a head row plus a row per shard, as on SQLite), first-class tests, failure
        // messages stored once per project in their failure groups, and executions as small integers.
        """
        CREATE TABLE test_runs (
            id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            project_id         BIGINT   NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            run_id             TEXT     NOT NULL,
            shard              TEXT     NOT NULL DEFAULT '',
            status             TEXT     NOT NULL CHECK (status IN ('passed', 'failed')),
            duration_ms        BIGINT   NOT NULL,
            timestamp_ms       BIGINT   NOT NULL,
            branch             TEXT,
            commit_sha         TEXT,
            count_total        BIGINT,
            count_passed       BIGINT,
            count_failed       BIGINT,
            count_skipped      BIGINT,
            fingerprint        BYTEA    NOT NULL,
            received_at        BIGINT   NOT NULL,
            build_url          TEXT,
            head_key           BIGINT   REFERENCES test_runs(id) ON DELETE CASCADE,
            shards             INTEGER,
            prior_status       TEXT,
            prior_duration_ms  BIGINT,
            UNIQUE (project_id, run_id, shard)
        );
        CREATE INDEX test_runs_by_time ON test_runs (project_id, timestamp_ms DESC, id DESC) WHERE head_key IS NULL;
        CREATE INDEX test_runs_by_commit ON test_runs (project_id, commit_sha, id) WHERE commit_sha IS NOT NULL;
        CREATE INDEX test_runs_by_head ON test_runs (head_key) WHERE head_key IS NOT NULL;
        CREATE TABLE tests (
            id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            project_id      BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            suite           TEXT   NOT NULL,
            name            TEXT   NOT NULL,
            file            TEXT,
            first_seen_ms   BIGINT NOT NULL,
            flaky_reset_ms  BIGINT,
            flaky_reset_by  TEXT,
            UNIQUE (project_id, suite, name)
        );
        CREATE TABLE failure_groups (
            id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            project_id   BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            fingerprint  BIGINT NOT NULL,
            pattern      TEXT   NOT NULL,
            UNIQUE (project_id, fingerprint)
        );
        CREATE TABLE failure_messages (
            id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            hash        BIGINT NOT NULL,
            group_id    BIGINT NOT NULL REFERENCES failure_groups(id) ON DELETE CASCADE,
            message     TEXT   NOT NULL,
            UNIQUE (project_id, hash)
        );
        CREATE INDEX failure_messages_by_group ON failure_messages (group_id);
        CREATE TABLE executions (
            run_key      BIGINT   NOT NULL REFERENCES test_runs(id) ON DELETE CASCADE,
            test_id      BIGINT   NOT NULL REFERENCES tests(id) ON DELETE CASCADE,
            attempt      INTEGER  NOT NULL,
            status       SMALLINT NOT NULL,
            duration_ms  BIGINT   NOT NULL,
            message_id   BIGINT   REFERENCES failure_messages(id) ON DELETE SET NULL,
            PRIMARY KEY (run_key, test_id, attempt)
        );
        CREATE INDEX executions_by_message ON executions (message_id) WHERE message_id IS NOT NULL;
        CREATE INDEX executions_by_test ON executions (test_id);
        """,

        // 3: daily run roll-ups, one row per (project, UTC day, branch; '' for all branches), kept current inside
        // each ingest transaction (any node may write, so there is no background fold and no watermark to race on).
        // The duration histogram is an array of bucket counts, so concurrent batches add to it in SQL.
        """
        CREATE TABLE run_daily_stats (
            project_id    BIGINT   NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            day           BIGINT   NOT NULL,
            branch        TEXT     NOT NULL,
            total         BIGINT   NOT NULL,
            passed        BIGINT   NOT NULL,
            failed        BIGINT   NOT NULL,
            duration_max  BIGINT   NOT NULL,
            histogram     BIGINT[] NOT NULL,
            PRIMARY KEY (project_id, branch, day)
        );
        """,

        // 4: quarantine: the entries, the opt-in auto-quarantine policy, and the log of every change.
        """
        CREATE TABLE quarantine (
            id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            project_id  BIGINT  NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            suite       TEXT    NOT NULL,
            name        TEXT    NOT NULL,
            reason      TEXT    NOT NULL,
            created_at  BIGINT  NOT NULL,
            created_by  TEXT    NOT NULL,
            expires_at  BIGINT,
            auto        BOOLEAN NOT NULL DEFAULT false,
            UNIQUE (project_id, suite, name)
        );
        CREATE TABLE quarantine_policy (
            project_id          BIGINT  PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
            release_after_days  INTEGER NOT NULL,
            changed_by          TEXT    NOT NULL,
            changed_at          BIGINT  NOT NULL
        );
        CREATE TABLE quarantine_log (
            id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            action      TEXT   NOT NULL,
            suite       TEXT   NOT NULL,
            name        TEXT   NOT NULL,
            reason      TEXT,
            changed_by  TEXT   NOT NULL,
            changed_at  BIGINT NOT NULL
        );
        CREATE INDEX quarantine_log_by_project ON quarantine_log (project_id, id);
        """,

        // 5: per-test roll-ups, as on SQLite: one row per (project, branch, day, test) with its counts, its sparse
        // duration histogram and the keys of the runs it appeared in; failure groups per day; the tests that failed on
        // each commit. One node folds at a time (an advisory lock). Runs wait for the fold in runs_to_fold, queued by
        // the transaction that stores them and dequeued by the one that folds them: several nodes commit runs out of
        // identity order, so a watermark would skip a run committed late, and run rows stay unchanged after insert.
        """
        CREATE TABLE runs_to_fold (run_key BIGINT PRIMARY KEY);
        INSERT INTO runs_to_fold (run_key) SELECT id FROM test_runs WHERE shards IS NULL;
        CREATE TABLE test_days (
            project_id      BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            branch          TEXT   NOT NULL,
            day             BIGINT NOT NULL,
            test_id         BIGINT NOT NULL REFERENCES tests(id) ON DELETE CASCADE,
            executions      BIGINT NOT NULL,
            failures        BIGINT NOT NULL,
            skipped         BIGINT NOT NULL,
            infra           BIGINT NOT NULL,
            retry_passes    BIGINT NOT NULL,
            flaky_commits   BIGINT NOT NULL,
            last_ms         BIGINT NOT NULL,
            last_ran_ms     BIGINT,
            last_failed_ms  BIGINT,
            last_flaky_ms   BIGINT,
            duration_sum    BIGINT NOT NULL,
            duration_max    BIGINT NOT NULL,
            histogram       BYTEA  NOT NULL,
            runs            BYTEA,
            PRIMARY KEY (project_id, branch, day, test_id)
        );
        CREATE INDEX test_days_by_test ON test_days (test_id, branch, day);
        CREATE TABLE failure_days (
            project_id   BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            day          BIGINT NOT NULL,
            group_id     BIGINT NOT NULL REFERENCES failure_groups(id) ON DELETE CASCADE,
            test_id      BIGINT NOT NULL REFERENCES tests(id) ON DELETE CASCADE,
            occurrences  BIGINT NOT NULL,
            first_ms     BIGINT NOT NULL,
            last_ms      BIGINT NOT NULL,
            PRIMARY KEY (project_id, day, group_id, test_id)
        );
        CREATE INDEX failure_days_by_group ON failure_days (group_id);
        CREATE INDEX failure_days_by_test ON failure_days (test_id);
        CREATE TABLE commit_failures (
            project_id  BIGINT  NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            commit_sha  TEXT    NOT NULL,
            test_id     BIGINT  NOT NULL REFERENCES tests(id) ON DELETE CASCADE,
            flaky       BOOLEAN NOT NULL,
            last_ms     BIGINT  NOT NULL,
            PRIMARY KEY (project_id, commit_sha, test_id)
        );
        CREATE INDEX commit_failures_by_test ON commit_failures (test_id);
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
                await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, cancellation);
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
