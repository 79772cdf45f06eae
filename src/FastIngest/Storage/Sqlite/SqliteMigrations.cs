using Microsoft.Data.Sqlite;

namespace FastIngest.Storage.Sqlite;

/// <summary>Forward-only schema migrations, tracked in <c>PRAGMA user_version</c>.</summary>
internal static class SqliteMigrations
{
    private static readonly Action<SqliteConnection, SqliteTransaction>[] s_steps =
    [
        static (c, t) => Execute(c, t, V1Schema),
        static (c, t) => AddDailyRollups(c, t),
        static (c, t) => Execute(c, t, V3ConfirmTokens),
        static (c, t) => Execute(c, t, V4RollupWatermark),
        static (c, t) => Execute(c, t, "ALTER TABLE projects ADD COLUMN retention_days INTEGER;"), // 5: per-project retention
        static (c, t) => Execute(c, t, V6TestCases),
        static (c, t) => NeverReuseKeys(c, t),
        static (c, t) => TestsFirstClass(c, t),
        static (c, t) => Execute(c, t, V9Quarantine),
        static (c, t) => Execute(c, t, "ALTER TABLE test_runs ADD COLUMN build_url TEXT;"), // 10: the CI build behind a run
        static (c, t) => Shards(c, t),
    ];

    /// <summary>Steps that rebuild tables, so they run with foreign keys off (SQLite's documented procedure).</summary>
    private static readonly int[] s_rebuildSteps = [7, 11];

    /// <summary>
    /// 7: internal keys are never handed out twice. Without AUTOINCREMENT SQLite reuses the largest key once its
    /// row is deleted, so a deleted project's key went to the next project created (anywhere), and a principal
    /// or an upload still holding it wrote into another tenant's project; a deleted newest run's id went to the
    /// next run, possibly below the roll-up watermark. The tables are rebuilt with AUTOINCREMENT, each sequence
    /// starting above every key used so far (for runs also above the watermark). Orgs and projects gain
    /// <c>deleted_at</c>: a deletion marks them first, which makes it final at once, then removes their data in
    /// paced batches; names are unique among live rows only, so a name is free again the moment its deletion
    /// begins. <c>server_secrets</c> holds the key that authenticates paging cursors.
    /// </summary>
    private static void NeverReuseKeys(SqliteConnection connection, SqliteTransaction transaction)
    {
        Execute(connection, transaction, """
            CREATE TABLE orgs_v7 (
                id          INTEGER PRIMARY KEY AUTOINCREMENT,
                public_id   TEXT    NOT NULL UNIQUE,
                name        TEXT    NOT NULL,
                created_at  INTEGER NOT NULL,
                deleted_at  INTEGER
            );
            INSERT INTO orgs_v7 (id, public_id, name, created_at) SELECT id, public_id, name, created_at FROM orgs;
            DROP TABLE orgs;
            ALTER TABLE orgs_v7 RENAME TO orgs;
            CREATE UNIQUE INDEX orgs_live_name ON orgs (name) WHERE deleted_at IS NULL;

            CREATE TABLE projects_v7 (
                id              INTEGER PRIMARY KEY AUTOINCREMENT,
                public_id       TEXT    NOT NULL UNIQUE,
                org_id          INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
                name            TEXT    NOT NULL,
                created_at      INTEGER NOT NULL,
                retention_days  INTEGER,
                deleted_at      INTEGER
            );
            INSERT INTO projects_v7 (id, public_id, org_id, name, created_at, retention_days)
                SELECT id, public_id, org_id, name, created_at, retention_days FROM projects;
            DROP TABLE projects;
            ALTER TABLE projects_v7 RENAME TO projects;
            CREATE UNIQUE INDEX projects_live_name ON projects (org_id, name) WHERE deleted_at IS NULL;

            CREATE TABLE test_runs_v7 (
                id             INTEGER PRIMARY KEY AUTOINCREMENT,
                project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                run_id         TEXT    NOT NULL,
                status         TEXT    NOT NULL CHECK (status IN ('passed', 'failed')),
                duration_ms    INTEGER NOT NULL,
                timestamp_ms   INTEGER NOT NULL,
                branch         TEXT,
                commit_sha     TEXT,
                count_total    INTEGER,
                count_passed   INTEGER,
                count_failed   INTEGER,
                count_skipped  INTEGER,
                fingerprint    BLOB    NOT NULL,
                received_at    INTEGER NOT NULL,
                UNIQUE (project_id, run_id)
            );
            INSERT INTO test_runs_v7 (id, project_id, run_id, status, duration_ms, timestamp_ms, branch, commit_sha,
                                      count_total, count_passed, count_failed, count_skipped, fingerprint, received_at)
                SELECT id, project_id, run_id, status, duration_ms, timestamp_ms, branch, commit_sha,
                       count_total, count_passed, count_failed, count_skipped, fingerprint, received_at FROM test_runs;
            DROP TABLE test_runs;
            ALTER TABLE test_runs_v7 RENAME TO test_runs;
            CREATE INDEX test_runs_by_time ON test_runs (project_id, timestamp_ms DESC, id DESC);

            DELETE FROM sqlite_sequence WHERE name IN ('orgs', 'projects', 'test_runs');
            INSERT INTO sqlite_sequence (name, seq) SELECT 'orgs', coalesce(max(id), 0) FROM orgs;
            INSERT INTO sqlite_sequence (name, seq) SELECT 'projects', coalesce(max(id), 0) FROM projects;
            INSERT INTO sqlite_sequence (name, seq)
                SELECT 'test_runs', max(coalesce((SELECT max(id) FROM test_runs), 0), (SELECT last_run_id FROM rollup_state WHERE id = 1));

            CREATE TABLE server_secrets (
                name   TEXT PRIMARY KEY,
                value  BLOB NOT NULL
            ) WITHOUT ROWID;
            """);

        using var secret = connection.CreateCommand();
        secret.Transaction = transaction;
        secret.CommandText = "INSERT INTO server_secrets (name, value) VALUES ('cursor', $key);";
        secret.Parameters.AddWithValue("$key", System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        secret.ExecuteNonQuery();
    }

    /// <summary>
    /// 11: sharded runs. A run is unique per (project, run id, shard): a run without shards has shard '' as before.
    /// A sharded run is a head row (shard '', <c>shards</c> = how many, the merged status, counts and duration,
    /// a fingerprint no content has) plus one row per shard (<c>head_key</c> names the head) holding that shard's
    /// own fields, fingerprint and executions, stamped with the head's timestamp, and the run's merged status and
    /// duration just before it joined (<c>prior_*</c>: what the roll-up fold takes back out, in O(1)). Run-level
    /// reads take rows without a head (the time index holds only those: a run's shards never cost a page scan);
    /// per-test data lives on rows without <c>shards</c>. The unique key changes, so the table is rebuilt (keys and
    /// the AUTOINCREMENT sequence kept).
    /// </summary>
    private const string V11Shards = """
        CREATE TABLE test_runs_v11 (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            run_id         TEXT    NOT NULL,
            status         TEXT    NOT NULL CHECK (status IN ('passed', 'failed')),
            duration_ms    INTEGER NOT NULL,
            timestamp_ms   INTEGER NOT NULL,
            branch         TEXT,
            commit_sha     TEXT,
            count_total    INTEGER,
            count_passed   INTEGER,
            count_failed   INTEGER,
            count_skipped  INTEGER,
            fingerprint    BLOB    NOT NULL,
            received_at    INTEGER NOT NULL,
            build_url      TEXT,
            shard          TEXT    NOT NULL DEFAULT '',
            head_key       INTEGER REFERENCES test_runs(id) ON DELETE CASCADE,
            shards         INTEGER,
            prior_status   TEXT,
            prior_duration_ms INTEGER,
            UNIQUE (project_id, run_id, shard)
        );
        INSERT INTO test_runs_v11 (id, project_id, run_id, status, duration_ms, timestamp_ms, branch, commit_sha,
                                   count_total, count_passed, count_failed, count_skipped, fingerprint, received_at, build_url)
            SELECT id, project_id, run_id, status, duration_ms, timestamp_ms, branch, commit_sha,
                   count_total, count_passed, count_failed, count_skipped, fingerprint, received_at, build_url FROM test_runs;
        DROP TABLE test_runs;
        ALTER TABLE test_runs_v11 RENAME TO test_runs;
        CREATE INDEX test_runs_by_time ON test_runs (project_id, timestamp_ms DESC, id DESC) WHERE head_key IS NULL;
        CREATE INDEX test_runs_by_commit ON test_runs (project_id, commit_sha, id) WHERE commit_sha IS NOT NULL;
        CREATE INDEX test_runs_by_head ON test_runs (head_key) WHERE head_key IS NOT NULL;
        """;

    private static void Shards(SqliteConnection connection, SqliteTransaction transaction)
    {
        // Keys of deleted runs are never handed out again: the sequence carries over, not just the largest live key.
        using var sequence = connection.CreateCommand();
        sequence.Transaction = transaction;
        sequence.CommandText = "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'test_runs'), 0);";
        var used = (long)sequence.ExecuteScalar()!;
        Execute(connection, transaction, V11Shards);
        Execute(connection, transaction, $"UPDATE sqlite_sequence SET seq = max(seq, {used}) WHERE name = 'test_runs';");
        Execute(connection, transaction, $"INSERT INTO sqlite_sequence (name, seq) SELECT 'test_runs', {used} WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'test_runs');");
    }

    /// <summary>
    /// 9: quarantine. Tests (by suite and name, seen or not yet) whose failures do not block a build, with who put
    /// them there, why and until when; every change is kept in <c>quarantine_log</c>.
    /// </summary>
    private const string V9Quarantine = """
        CREATE TABLE quarantine (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            suite       TEXT    NOT NULL,
            name        TEXT    NOT NULL,
            reason      TEXT    NOT NULL,
            created_at  INTEGER NOT NULL,
            created_by  TEXT    NOT NULL,
            expires_at  INTEGER,
            auto        INTEGER NOT NULL DEFAULT 0,
            UNIQUE (project_id, suite, name)
        );
        CREATE TABLE quarantine_policy (
            project_id          INTEGER PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
            release_after_days  INTEGER NOT NULL,
            changed_by          TEXT    NOT NULL,
            changed_at          INTEGER NOT NULL
        );
        CREATE TABLE quarantine_log (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            action      TEXT    NOT NULL,
            suite       TEXT    NOT NULL,
            name        TEXT    NOT NULL,
            reason      TEXT,
            changed_by  TEXT    NOT NULL,
            changed_at  INTEGER NOT NULL
        );
        CREATE INDEX quarantine_log_by_project ON quarantine_log (project_id, id);
        """;

    /// <summary>
    /// 8: tests are first-class. A test is (project, suite, name) with a compact id; an execution row is (run,
    /// test, attempt) -> status, duration, message id, a few bytes instead of the names repeated per execution
    /// (216 bytes each before). Failure messages are stored once per project, each in the failure group of its
    /// <see cref="TestAnalytics.FailurePattern"/>. <c>test_days</c> and <c>failure_days</c> are per-test and
    /// per-group daily roll-ups, folded in the background behind their own watermark (which starts at 0, so
    /// existing runs are folded after the upgrade, not inside it). <c>commit_failures</c> remembers, per commit, the
    /// tests that failed on it (rare) and whether the commit already made them flaky, so a run is checked against
    /// every earlier run of its commit at the cost of its own failures. Existing test cases are moved over in run order.
    /// </summary>
    private const string V8Tables = """
        CREATE TABLE tests (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            suite           TEXT    NOT NULL,
            name            TEXT    NOT NULL,
            file            TEXT,
            first_seen_ms   INTEGER NOT NULL,
            flaky_reset_ms  INTEGER,
            flaky_reset_by  TEXT,
            UNIQUE (project_id, suite, name)
        );
        CREATE TABLE failure_groups (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            fingerprint  INTEGER NOT NULL,
            pattern      TEXT    NOT NULL,
            UNIQUE (project_id, fingerprint)
        );
        CREATE TABLE failure_messages (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            hash        INTEGER NOT NULL,
            group_id    INTEGER NOT NULL,
            message     TEXT    NOT NULL,
            UNIQUE (project_id, hash)
        );
        CREATE INDEX failure_messages_by_group ON failure_messages (group_id);
        CREATE TABLE executions (
            run_key      INTEGER NOT NULL REFERENCES test_runs(id) ON DELETE CASCADE,
            test_id      INTEGER NOT NULL,
            attempt      INTEGER NOT NULL,
            status       INTEGER NOT NULL,
            duration_ms  INTEGER NOT NULL,
            message_id   INTEGER,
            PRIMARY KEY (run_key, test_id, attempt)
        ) WITHOUT ROWID;
        CREATE TABLE test_days (
            project_id      INTEGER NOT NULL,
            branch          TEXT    NOT NULL,
            day             INTEGER NOT NULL,
            test_id         INTEGER NOT NULL,
            executions      INTEGER NOT NULL,
            failures        INTEGER NOT NULL,
            skipped         INTEGER NOT NULL,
            infra           INTEGER NOT NULL,
            retry_passes    INTEGER NOT NULL,
            flaky_commits   INTEGER NOT NULL,
            last_ms         INTEGER NOT NULL,
            last_ran_ms     INTEGER,
            last_failed_ms  INTEGER,
            last_flaky_ms   INTEGER,
            duration_sum    INTEGER NOT NULL,
            duration_max    INTEGER NOT NULL,
            histogram       BLOB    NOT NULL,
            runs            BLOB,
            PRIMARY KEY (project_id, branch, day, test_id)
        ) WITHOUT ROWID;
        CREATE INDEX test_days_by_test ON test_days (test_id, branch, day);
        CREATE TABLE failure_days (
            project_id   INTEGER NOT NULL,
            day          INTEGER NOT NULL,
            group_id     INTEGER NOT NULL,
            test_id      INTEGER NOT NULL,
            occurrences  INTEGER NOT NULL,
            first_ms     INTEGER NOT NULL,
            last_ms      INTEGER NOT NULL,
            PRIMARY KEY (project_id, day, group_id, test_id)
        ) WITHOUT ROWID;
        CREATE TABLE commit_failures (
            project_id  INTEGER NOT NULL,
            commit_sha  TEXT    NOT NULL,
            test_id     INTEGER NOT NULL,
            flaky       INTEGER NOT NULL,
            last_ms     INTEGER NOT NULL,
            PRIMARY KEY (project_id, commit_sha, test_id)
        ) WITHOUT ROWID;
        CREATE INDEX executions_by_message ON executions (message_id) WHERE message_id IS NOT NULL;
        CREATE TABLE test_rollup_state (
            id           INTEGER PRIMARY KEY CHECK (id = 1),
            last_run_id  INTEGER NOT NULL
        );
        INSERT INTO test_rollup_state (id, last_run_id) VALUES (1, 0);
        CREATE INDEX test_runs_by_commit ON test_runs (project_id, commit_sha, id) WHERE commit_sha IS NOT NULL;
        """;

    private static void TestsFirstClass(SqliteConnection connection, SqliteTransaction transaction)
    {
        Execute(connection, transaction, V8Tables);
        using var executions = new ExecutionWriter(connection.Handle!);
        executions.BeginTransaction();
        using var read = connection.CreateCommand();
        read.Transaction = transaction;
        read.CommandText = """
            SELECT tc.run_key, r.project_id, r.timestamp_ms, tc.suite, tc.name, tc.file, tc.status, tc.duration_ms,
                   tc.attempt, tc.failure_message
            FROM test_cases AS tc JOIN test_runs AS r ON r.id = tc.run_key ORDER BY tc.run_key, tc.seq;
            """;
        var cases = new List<TestCase>();
        long runKey = -1, projectKey = 0, timestampMs = 0;
        using (var reader = read.ExecuteReader())
        {
            while (reader.Read())
            {
                if (reader.GetInt64(0) != runKey)
                {
                    if (cases.Count > 0)
                    {
                        executions.Write(runKey, projectKey, timestampMs, cases);
                        cases.Clear();
                        executions.BeginTransaction(); // nothing here rolls back alone: keep the journal (and caches) small
                    }

                    (runKey, projectKey, timestampMs) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
                }

                if (!TestCaseStatuses.TryParse(reader.GetString(6), out var status))
                {
                    throw new InvalidDataException($"test_cases holds an unknown status '{reader.GetString(6)}'.");
                }

                cases.Add(new TestCase(reader.GetString(3), reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5), status,
                    reader.GetInt64(7), reader.GetInt32(8), reader.IsDBNull(9) ? null : reader.GetString(9)));
            }
        }

        if (cases.Count > 0)
        {
            executions.Write(runKey, projectKey, timestampMs, cases);
        }

        Execute(connection, transaction, "DROP TABLE test_cases;");
    }

    /// <summary>
    /// 6: per-test results. Keyed by (run, position in the upload), so a run's cases are one contiguous range:
    /// inserted in order at the end of the tree and read back in order, and deleted with their run (cascade).
    /// Flaky and slowest queries reach them through the runs' time index, never by scanning this table.
    /// </summary>
    private const string V6TestCases = """
        CREATE TABLE test_cases (
            run_key          INTEGER NOT NULL REFERENCES test_runs(id) ON DELETE CASCADE,
            seq              INTEGER NOT NULL,
            suite            TEXT    NOT NULL,
            name             TEXT    NOT NULL,
            file             TEXT,
            status           TEXT    NOT NULL CHECK (status IN ('passed', 'failed', 'skipped', 'error')),
            duration_ms      INTEGER NOT NULL,
            attempt          INTEGER NOT NULL,
            failure_message  TEXT,
            PRIMARY KEY (run_key, seq)
        ) WITHOUT ROWID;
        """;

    /// <summary>
    /// 4: roll-ups move off the ingest path. Runs with an id above the watermark are not yet folded into
    /// run_daily_stats; <see cref="SqliteRollupFolder"/> folds them shortly after they commit.
    /// </summary>
    private const string V4RollupWatermark = """
        CREATE TABLE rollup_state (
            id           INTEGER PRIMARY KEY CHECK (id = 1),
            last_run_id  INTEGER NOT NULL
        );
        INSERT INTO rollup_state (id, last_run_id) SELECT 1, coalesce(max(id), 0) FROM test_runs;
        """;

    /// <summary>3: one-time confirm tokens for destructive actions (only a SHA-256 of the token is kept).</summary>
    private const string V3ConfirmTokens = """
        CREATE TABLE confirm_tokens (
            token_hash     TEXT    PRIMARY KEY,
            action         TEXT    NOT NULL,
            target         TEXT    NOT NULL,
            credential_id  TEXT    NOT NULL,
            summary        TEXT    NOT NULL,
            created_at     INTEGER NOT NULL,
            expires_at     INTEGER NOT NULL,
            used_at        INTEGER
        ) WITHOUT ROWID;
        """;

    private const string V1Schema =
        // 1: the seed's tenancy model, with internal integer keys so the runs index stays small.
        """
        CREATE TABLE orgs (
            id          INTEGER PRIMARY KEY,
            public_id   TEXT    NOT NULL UNIQUE,
            name        TEXT    NOT NULL UNIQUE,
            created_at  INTEGER NOT NULL
        );
        CREATE TABLE projects (
            id          INTEGER PRIMARY KEY,
            public_id   TEXT    NOT NULL UNIQUE,
            org_id      INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            name        TEXT    NOT NULL,
            created_at  INTEGER NOT NULL,
            UNIQUE (org_id, name)
        );
        CREATE TABLE api_tokens (
            id           TEXT    PRIMARY KEY,
            secret_hash  TEXT    NOT NULL,
            scope        TEXT    NOT NULL CHECK (scope IN ('admin', 'org', 'ingest', 'read')),
            org_id       INTEGER REFERENCES orgs(id) ON DELETE CASCADE,
            project_id   INTEGER REFERENCES projects(id) ON DELETE CASCADE,
            name         TEXT,
            created_at   INTEGER NOT NULL,
            expires_at   INTEGER,
            last_used_at INTEGER,
            revoked_at   INTEGER
        ) WITHOUT ROWID;
        CREATE INDEX api_tokens_by_project ON api_tokens (project_id);
        CREATE TABLE test_runs (
            id             INTEGER PRIMARY KEY,
            project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            run_id         TEXT    NOT NULL,
            status         TEXT    NOT NULL CHECK (status IN ('passed', 'failed')),
            duration_ms    INTEGER NOT NULL,
            timestamp_ms   INTEGER NOT NULL,
            branch         TEXT,
            commit_sha     TEXT,
            count_total    INTEGER,
            count_passed   INTEGER,
            count_failed   INTEGER,
            count_skipped  INTEGER,
            fingerprint    BLOB    NOT NULL,
            received_at    INTEGER NOT NULL,
            UNIQUE (project_id, run_id)
        );
        CREATE INDEX test_runs_by_time ON test_runs (project_id, timestamp_ms DESC, id DESC);
        """;

    public static int LatestVersion => s_steps.Length;

    /// <summary>Applies every pending step (tests may stop at <paramref name="upTo"/> to build an older database).</summary>
    public static void Apply(SqliteConnection connection, int? upTo = null)
    {
        var current = ReadVersion(connection);
        if (current > s_steps.Length)
        {
            throw new InvalidOperationException(
                $"The database has schema version {current}, newer than this binary knows ({s_steps.Length}). Upgrade fastingest.");
        }

        for (var version = current + 1; version <= Math.Min(s_steps.Length, upTo ?? int.MaxValue); version++)
        {
            var rebuild = s_rebuildSteps.Contains(version);
            if (rebuild)
            {
                // Only outside a transaction does this pragma take effect.
                ExecutePragma(connection, "PRAGMA foreign_keys=OFF;");
            }

            try
            {
                using var transaction = connection.BeginTransaction();
                s_steps[version - 1](connection, transaction);
                if (rebuild)
                {
                    ThrowOnForeignKeyViolation(connection, transaction, version);
                }

                Execute(connection, transaction, $"PRAGMA user_version = {version};");
                transaction.Commit();
            }
            finally
            {
                if (rebuild)
                {
                    ExecutePragma(connection, "PRAGMA foreign_keys=ON;");
                }
            }
        }
    }

    private static void ThrowOnForeignKeyViolation(SqliteConnection connection, SqliteTransaction transaction, int version)
    {
        using var check = connection.CreateCommand();
        check.Transaction = transaction;
        check.CommandText = "PRAGMA foreign_key_check;";
        using var reader = check.ExecuteReader();
        if (reader.Read())
        {
            throw new InvalidOperationException(
                $"Schema migration {version} found a row of '{reader.GetString(0)}' whose parent in '{reader.GetString(2)}' is missing; nothing was changed.");
        }
    }

    private static void ExecutePragma(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// 2: per-day roll-ups (counts and a duration histogram per project, day and branch; branch '' = all) so
    /// statistics over months read a few rows. Existing runs are folded in once here; the writer keeps them
    /// current in the same transaction as each batch.
    /// </summary>
    private static void AddDailyRollups(SqliteConnection connection, SqliteTransaction transaction)
    {
        Execute(connection, transaction, """
            CREATE TABLE run_daily_stats (
                project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                day           INTEGER NOT NULL,
                branch        TEXT    NOT NULL,
                total         INTEGER NOT NULL,
                passed        INTEGER NOT NULL,
                failed        INTEGER NOT NULL,
                duration_max  INTEGER NOT NULL,
                histogram     BLOB    NOT NULL,
                PRIMARY KEY (project_id, day, branch)
            ) WITHOUT ROWID;
            """);

        var rollups = new DailyRollups();
        using (var read = connection.CreateCommand())
        {
            read.Transaction = transaction;
            read.CommandText = "SELECT project_id, timestamp_ms, branch, status = 'passed', duration_ms FROM test_runs;";
            using var reader = read.ExecuteReader();
            while (reader.Read())
            {
                rollups.Add(reader.GetInt64(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetBoolean(3), reader.GetInt64(4));
            }
        }

        using var write = connection.CreateCommand();
        write.Transaction = transaction;
        write.CommandText = """
            INSERT INTO run_daily_stats (project_id, day, branch, total, passed, failed, duration_max, histogram)
            VALUES ($p, $d, $b, $t, $ps, $f, $m, $h);
            """;
        foreach (var ((project, day, branch), stats) in rollups.Groups)
        {
            write.Parameters.Clear();
            write.Parameters.AddWithValue("$p", project);
            write.Parameters.AddWithValue("$d", day);
            write.Parameters.AddWithValue("$b", branch);
            write.Parameters.AddWithValue("$t", stats.Total);
            write.Parameters.AddWithValue("$ps", stats.Passed);
            write.Parameters.AddWithValue("$f", stats.Failed);
            write.Parameters.AddWithValue("$m", stats.DurationMax);
            write.Parameters.AddWithValue("$h", stats.Histogram);
            write.ExecuteNonQuery();
        }
    }

    private static void Execute(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static int ReadVersion(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA user_version;";
        return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
