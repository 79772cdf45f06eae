namespace FastIngest.Storage;

/// <summary>
/// Every tenant's runs and every token hash live in the data directory, so nothing there is readable by other
/// local users: directories 0700, files 0600, whoever creates them (us, SQLite, a backup) and whatever the
/// process umask. SQLite creates the <c>-wal</c> and <c>-shm</c> files with the database file's mode, so
/// creating the database file first, private, covers them too.
/// </summary>
public static class PrivateFiles
{
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Creates the directory (and missing parents) with mode 0700, or tightens it to 0700.</summary>
    public static void EnsureDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }

        Directory.CreateDirectory(path, DirectoryMode);
        Tighten(path, DirectoryMode);
    }

    /// <summary>Creates an empty file with mode 0600 if it does not exist; tightens an existing one to 0600.</summary>
    public static void EnsureFile(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            using (File.Open(path, System.IO.FileMode.OpenOrCreate))
            {
            }

            return;
        }

        var options = new FileStreamOptions { Mode = System.IO.FileMode.OpenOrCreate, Access = FileAccess.Write, UnixCreateMode = FileMode };
        using (new FileStream(path, options))
        {
        }

        Tighten(path, FileMode);
    }

    /// <summary>Tightens a file to 0600 when it exists (SQLite's side files of an older, looser database).</summary>
    public static void TightenIfExists(string path)
    {
        if (!OperatingSystem.IsWindows() && File.Exists(path))
        {
            Tighten(path, FileMode);
        }
    }

    /// <summary>
    /// Only the owner may change a mode. An operator's directory owned by another user (a bind mount) keeps its
    /// mode: the server still starts, and says so once, rather than refusing to run.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void Tighten(string path, UnixFileMode mode)
    {
        if (File.GetUnixFileMode(path) == mode)
        {
            return;
        }

        try
        {
            File.SetUnixFileMode(path, mode);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            Console.Error.WriteLine($"fastingest: warning: could not restrict {path} to mode {Convert.ToString((int)mode, 8)} ({e.Message}); other local users may read it.");
        }
    }

    /// <summary>Writes a secret's text to a new (or replaced) file with mode 0600 from its first byte.</summary>
    public static void WriteSecret(string path, string text)
    {
        EnsureFile(path);
        using var stream = new FileStream(path, System.IO.FileMode.Truncate, FileAccess.Write);
        using var writer = new StreamWriter(stream);
        writer.WriteLine(text);
    }
}
