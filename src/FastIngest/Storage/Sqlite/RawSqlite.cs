using System.Text;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace FastIngest.Storage.Sqlite;

/// <summary>
/// The few moves the writer makes on SQLite's C API directly (the measured hot path: no boxing, no ADO.NET command
/// per row), in one place for every statement it prepares.
/// </summary>
internal static class RawSqlite
{
    public static sqlite3_stmt Prepare(sqlite3 db, string sql)
    {
        Check(db, raw.sqlite3_prepare_v2(db, sql, out var statement));
        return statement;
    }

    /// <summary>Runs a statement that returns no rows and resets it for the next use.</summary>
    public static void Step(sqlite3 db, sqlite3_stmt statement)
    {
        var rc = raw.sqlite3_step(statement);
        raw.sqlite3_reset(statement);
        if (rc != raw.SQLITE_DONE)
        {
            Check(db, rc);
        }
    }

    public static void BindText(sqlite3_stmt statement, int index, string? text)
    {
        if (text is null)
        {
            raw.sqlite3_bind_null(statement, index);
            return;
        }

        // Fields are short (at most a few thousand characters, validated): UTF-8 on the stack, no allocation per row.
        Span<byte> utf8 = stackalloc byte[Encoding.UTF8.GetMaxByteCount(text.Length)];
        var length = Encoding.UTF8.GetBytes(text, utf8);
        raw.sqlite3_bind_text(statement, index, utf8[..length]);
    }

    public static void BindInt64(sqlite3_stmt statement, int index, long? value)
    {
        if (value is { } v)
        {
            raw.sqlite3_bind_int64(statement, index, v);
        }
        else
        {
            raw.sqlite3_bind_null(statement, index);
        }
    }

    /// <summary>A run's counts as four parameters from <paramref name="first"/> on (total, passed, failed, skipped); four nulls when it has none.</summary>
    public static void BindCounts(sqlite3_stmt statement, int first, RunCounts? counts)
    {
        BindInt64(statement, first, counts?.Total);
        BindInt64(statement, first + 1, counts?.Passed);
        BindInt64(statement, first + 2, counts?.Failed);
        BindInt64(statement, first + 3, counts?.Skipped);
    }

    public static void Check(sqlite3 db, int rc)
    {
        if (rc is not (raw.SQLITE_OK or raw.SQLITE_DONE or raw.SQLITE_ROW))
        {
            SqliteException.ThrowExceptionForRC(rc, db);
            throw new SqliteException($"SQLite error {rc}", rc); // ThrowExceptionForRC returns only for success codes
        }
    }
}
