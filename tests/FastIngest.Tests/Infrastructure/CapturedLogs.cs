using System.Collections.Concurrent;
using FastIngest.Observability;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Infrastructure;

/// <summary>
/// Captures every log line exactly as the server would print it (through <see cref="JsonLineFormatter"/>),
/// so tests can assert on event names, fields and the absence of secrets.
/// </summary>
public sealed class CapturedLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly JsonLineFormatter _formatter = new();

    /// <summary>Completed (and replaced) whenever a line is added.</summary>
    private TaskCompletionSource _added = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyCollection<string> Lines => _lines;

    /// <summary>
    /// The first line that matches, once it is written. A request's access line is written after its response has
    /// gone out (the telemetry middleware finishes after the endpoint), so a client can hold the answer before the
    /// line exists: a test waits for it instead of reading at once.
    /// </summary>
    public async Task<string> WaitForAsync(Func<string, bool> match)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var added = Volatile.Read(ref _added); // taken before the look, so a line added after it ends the wait
            if (_lines.FirstOrDefault(match) is { } line)
            {
                return line;
            }

            try
            {
                await added.Task.WaitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no matching log line in 30 s; the {_lines.Count} lines written:\n{string.Join('\n', _lines)}");
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturedLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            using var writer = new StringWriter();
            owner._formatter.Write(new LogEntry<TState>(logLevel, category, eventId, state, exception, formatter), null, writer);
            owner._lines.Enqueue(writer.ToString());
            Interlocked.Exchange(ref owner._added, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }
}
