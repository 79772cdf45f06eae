using Dapper;
using static FastIngest.Storage.StoredRows;

namespace FastIngest.Storage.Sqlite;

[DapperAot]
public sealed class SqliteConfirmTokenStore : IConfirmTokenStore
{
    private readonly SqliteWrites _writes;

    public SqliteConfirmTokenStore(SqliteWrites writes) => _writes = writes;

    public Task InsertAsync(ConfirmTokenRecord token) =>
        _writes.RunAsync("insert_confirm_token", connection =>
        {
            connection.Execute(
                """
                INSERT INTO confirm_tokens (token_hash, action, target, credential_id, summary, created_at, expires_at)
                VALUES (@TokenHash, @Action, @Target, @CredentialId, @Summary, @CreatedAtMs, @ExpiresAtMs);
                """,
                new { token.TokenHash, token.Action, token.Target, token.CredentialId, token.Summary, token.CreatedAtMs, token.ExpiresAtMs });
        });

    public Task<ConfirmOutcome> TryConsumeAsync(string tokenHash, string action, string target, string credentialId, long nowMs) =>
        _writes.RunAsync<ConfirmOutcome>("consume_confirm_token", connection =>
        {
            // The one statement that decides: the one writer runs consumers one after another (and SQLite would
            // serialize them anyway), so of any number of concurrent consumers exactly one sees a row change.
            var changed = connection.Execute(
                """
                UPDATE confirm_tokens SET used_at = @nowMs
                WHERE token_hash = @tokenHash AND used_at IS NULL AND expires_at > @nowMs
                  AND action = @action AND target = @target AND credential_id = @credentialId;
                """,
                new { tokenHash, nowMs, action, target, credentialId });
            if (changed == 1)
            {
                return ConfirmOutcome.Consumed;
            }

            // Only to explain the refusal; nothing is spent here.
            var row = connection.QuerySingleOrDefault<ConfirmRow>(
                "SELECT action AS Action, target AS Target, credential_id AS CredentialId, expires_at AS ExpiresAt, used_at AS UsedAt FROM confirm_tokens WHERE token_hash = @tokenHash;",
                new { tokenHash });
            return ConfirmRow.Refusal(row, action, target, credentialId);
        });

    public Task<int> PurgeExpiredAsync(long beforeMs) =>
        _writes.RunAsync<int>("purge_confirm_tokens", connection =>
        {
            return connection.Execute("DELETE FROM confirm_tokens WHERE expires_at < @beforeMs;", new { beforeMs });
        });
}
