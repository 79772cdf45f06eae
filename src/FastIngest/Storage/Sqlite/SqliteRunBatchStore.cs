using System.Buffers.Binary;
using Microsoft.Data.Sqlite;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// The single writer's view of SQLite: one long-lived connection with one prepared <c>INSERT OR IGNORE</c> and
/// one prepared fingerprint lookup, reused for every batch. Not thread-safe by design; one writer owns it.
/// </summary>
public sealed class SqliteRunBatchStore : IRunBatchStore
{
    private const string InsertSql = """
        INSERT OR IGNORE INTO test_runs
            (project_id, run_id, status, duration_ms, timestamp_ms, branch, commit_sha,
             count_total, count_passed, count_failed, count_skipped, fingerprint, received_at)
        VALUES ($p, $r, $s, $d, $t, $b, $c, $ct, $cp, $cf, $cs, $f, $at);
        """;

    private const string FingerprintSql = "SELECT fingerprint FROM test_runs WHERE project_id = $p AND run_id = $r;";

    private readonly SqliteDatabase _database;
    private WriterConnection? _writer;

    public SqliteRunBatchStore(SqliteDatabase database) => _database = database;

    public void Commit(ReadOnlySpan<RunRecord> runs, Span<RunWriteOutcome> outcomes)
    {
        var writer = _writer ??= new WriterConnection(_database.Open());
        try
        {
            writer.Commit(runs, outcomes);
        }
        catch
        {
            // After an I/O error the connection's state is unknown: drop it and start clean on the next batch.
            _writer = null;
            writer.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _writer?.Dispose();
        _writer = null;
    }

    private sealed class WriterConnection : IDisposable
    {
        private readonly SqliteConnection _connection;
        private readonly SqliteCommand _insert;
        private readonly SqliteCommand _fingerprint;
        private readonly SqliteParameter _pProject, _pRun, _pStatus, _pDuration, _pTimestamp, _pBranch, _pCommit;
        private readonly SqliteParameter _pTotal, _pPassed, _pFailed, _pSkipped, _pFingerprint, _pReceived;
        private readonly SqliteParameter _qProject, _qRun;

        public WriterConnection(SqliteConnection connection)
        {
            _connection = connection;
            _insert = connection.CreateCommand();
            _insert.CommandText = InsertSql;
            _pProject = _insert.Parameters.Add("$p", SqliteType.Integer);
            _pRun = _insert.Parameters.Add("$r", SqliteType.Text);
            _pStatus = _insert.Parameters.Add("$s", SqliteType.Text);
            _pDuration = _insert.Parameters.Add("$d", SqliteType.Integer);
            _pTimestamp = _insert.Parameters.Add("$t", SqliteType.Integer);
            _pBranch = _insert.Parameters.Add("$b", SqliteType.Text);
            _pCommit = _insert.Parameters.Add("$c", SqliteType.Text);
            _pTotal = _insert.Parameters.Add("$ct", SqliteType.Integer);
            _pPassed = _insert.Parameters.Add("$cp", SqliteType.Integer);
            _pFailed = _insert.Parameters.Add("$cf", SqliteType.Integer);
            _pSkipped = _insert.Parameters.Add("$cs", SqliteType.Integer);
            _pFingerprint = _insert.Parameters.Add("$f", SqliteType.Blob);
            _pReceived = _insert.Parameters.Add("$at", SqliteType.Integer);

            _fingerprint = connection.CreateCommand();
            _fingerprint.CommandText = FingerprintSql;
            _qProject = _fingerprint.Parameters.Add("$p", SqliteType.Integer);
            _qRun = _fingerprint.Parameters.Add("$r", SqliteType.Text);

            // Values are bound before Prepare so Microsoft.Data.Sqlite compiles each statement once.
            BindDefaults();
            _insert.Prepare();
            _fingerprint.Prepare();
        }

        public void Commit(ReadOnlySpan<RunRecord> runs, Span<RunWriteOutcome> outcomes)
        {
            using var transaction = _connection.BeginTransaction(deferred: false); // BEGIN IMMEDIATE
            _insert.Transaction = transaction;
            _fingerprint.Transaction = transaction;
            Span<byte> stored = stackalloc byte[16];
            for (var i = 0; i < runs.Length; i++)
            {
                var run = runs[i];
                Bind(run);
                if (_insert.ExecuteNonQuery() == 1)
                {
                    outcomes[i] = RunWriteOutcome.Created;
                    continue;
                }

                // Ignored: the key exists, possibly from earlier in this very batch. Same content is a retry.
                _qProject.Value = run.ProjectKey;
                _qRun.Value = run.RunId;
                var existing = (byte[]?)_fingerprint.ExecuteScalar();
                outcomes[i] = existing is { Length: 16 } && ReadFingerprint(existing) == run.Fingerprint
                    ? RunWriteOutcome.Duplicate
                    : RunWriteOutcome.Conflict;
            }

            transaction.Commit();
        }

        public void Dispose()
        {
            _insert.Dispose();
            _fingerprint.Dispose();
            _connection.Dispose();
        }

        internal static UInt128 ReadFingerprint(ReadOnlySpan<byte> bytes) =>
            new(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));

        private static byte[] WriteFingerprint(UInt128 value)
        {
            var bytes = new byte[16];
            BinaryPrimitives.WriteUInt64BigEndian(bytes, (ulong)(value >> 64));
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(8), (ulong)value);
            return bytes;
        }

        private void Bind(RunRecord run)
        {
            _pProject.Value = run.ProjectKey;
            _pRun.Value = run.RunId;
            _pStatus.Value = run.Passed ? "passed" : "failed";
            _pDuration.Value = run.DurationMs;
            _pTimestamp.Value = run.TimestampMs;
            _pBranch.Value = (object?)run.Branch ?? DBNull.Value;
            _pCommit.Value = (object?)run.CommitSha ?? DBNull.Value;
            if (run.Counts is { } counts)
            {
                _pTotal.Value = counts.Total;
                _pPassed.Value = counts.Passed;
                _pFailed.Value = counts.Failed;
                _pSkipped.Value = counts.Skipped;
            }
            else
            {
                _pTotal.Value = _pPassed.Value = _pFailed.Value = _pSkipped.Value = DBNull.Value;
            }

            _pFingerprint.Value = WriteFingerprint(run.Fingerprint);
            _pReceived.Value = run.ReceivedAtMs;
        }

        private void BindDefaults()
        {
            foreach (SqliteParameter parameter in _insert.Parameters)
            {
                parameter.Value = DBNull.Value;
            }

            _qProject.Value = 0L;
            _qRun.Value = string.Empty;
        }
    }
}
