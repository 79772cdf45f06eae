using Dapper;
using Npgsql;
using static FastIngest.Storage.StoredRows;

namespace FastIngest.Storage.Postgres;

/// <summary>
/// Confirm tokens in PostgreSQL. Spending is the same one <c>UPDATE ... WHERE used_at IS NULL</c> as on SQLite: under
/// READ COMMITTED a second consumer (on any node) waits for the first one's row lock, then re-checks the row, finds
/// it used and changes nothing, so a token is spent once across every node.
/// </summary>
[DapperAot]
public sealed class PostgresConfirmTokenStore : IConfirmTokenStore
{
    private readonly NpgsqlDataSource _db;

    public PostgresConfirmTokenStore(PostgresDatabase database) => _db = database.DataSource;

    public async Task InsertAsync(ConfirmTokenRecord token)
    {
        await using var connection = await _db.OpenConnectionAsync();
        await connection.ExecuteAsync(
            """
            INSERT INTO confirm_tokens (token_hash, action, target, credential_id, summary, created_at, expires_at)
            VALUES (@TokenHash, @Action, @Target, @CredentialId, @Summary, @CreatedAtMs, @ExpiresAtMs);
            """,
            new { token.TokenHash, token.Action, token.Target, token.CredentialId, token.Summary, token.CreatedAtMs, token.ExpiresAtMs });
    }

    public async Task<ConfirmOutcome> TryConsumeAsync(string tokenHash, string action, string target, string credentialId, long nowMs)
    {
        await using var connection = await _db.OpenConnectionAsync();
        var changed = await connection.ExecuteAsync(
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
        var row = await connection.QuerySingleOrDefaultAsync<ConfirmRow>(
            "SELECT action AS Action, target AS Target, credential_id AS CredentialId, expires_at AS ExpiresAt, used_at AS UsedAt FROM confirm_tokens WHERE token_hash = @tokenHash;",
            new { tokenHash });
        return ConfirmRow.Refusal(row, action, target, credentialId);
    }

    public async Task<int> PurgeExpiredAsync(long beforeMs)
    {
        await using var connection = await _db.OpenConnectionAsync();
        return await connection.ExecuteAsync("DELETE FROM confirm_tokens WHERE expires_at < @beforeMs;", new { beforeMs });
    }

}
