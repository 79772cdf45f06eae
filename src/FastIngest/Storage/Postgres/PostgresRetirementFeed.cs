using System.Globalization;
using Npgsql;

namespace FastIngest.Storage.Postgres;

/// <summary>
/// Retirements through PostgreSQL's LISTEN/NOTIFY. Every statement that revokes a token or begins a deletion sends
/// <c>pg_notify</c> in its own transaction, so a notification goes out exactly when the change commits and never
/// for one that rolled back. Each node keeps one connection listening; a notification reaches it in milliseconds,
/// with no polling. When that connection is lost, notifications sent meanwhile are lost with it, so the node
/// forgets every cached credential before it listens again.
/// </summary>
public sealed class PostgresRetirementFeed : IRetirementFeed
{
    /// <summary>The channel every node listens on.</summary>
    public const string Channel = "fastingest_retired";

    private static readonly TimeSpan s_reconnectPause = TimeSpan.FromMilliseconds(500);
    private readonly NpgsqlDataSource _db;

    public PostgresRetirementFeed(PostgresDatabase database) => _db = database.DataSource;

    /// <summary>SQL sending one retirement (<c>token:&lt;id&gt;</c>, <c>project:&lt;key&gt;</c>, <c>org:&lt;key&gt;</c>) from an expression.</summary>
    public static string Notify(string payloadExpression) => $"pg_notify('{Channel}', {payloadExpression})";

    public async Task ListenAsync(IRetirementSink sink, CancellationToken cancellation)
    {
        var first = true;
        while (!cancellation.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _db.OpenConnectionAsync(cancellation);
                connection.Notification += (_, e) => Deliver(sink, e.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN {Channel};", connection))
                {
                    await listen.ExecuteNonQueryAsync(cancellation);
                }

                if (!first)
                {
                    sink.Resynchronize(); // listening again: whatever was sent while not listening is unknown
                }

                first = false;
                while (true)
                {
                    await connection.WaitAsync(cancellation);
                }
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException)
            {
                first = false;
                sink.Resynchronize(); // the connection is gone: treat every cached credential as suspect now
                try
                {
                    await Task.Delay(s_reconnectPause, cancellation);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private static void Deliver(IRetirementSink sink, string payload)
    {
        var colon = payload.IndexOf(':', StringComparison.Ordinal);
        var kind = colon < 0 ? payload : payload[..colon];
        var value = colon < 0 ? "" : payload[(colon + 1)..];
        switch (kind)
        {
            case "token":
                sink.TokenRetired(value);
                break;
            case "project" when long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var project):
                sink.ProjectRetired(project);
                break;
            case "org" when long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var org):
                sink.OrgRetired(org);
                break;
            default:
                sink.Resynchronize(); // not understood (a newer node?): the safe reading is "anything may be retired"
                break;
        }
    }
}
