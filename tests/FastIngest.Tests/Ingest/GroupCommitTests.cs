using FastIngest.Configuration;
using FastIngest.Ingest;
using FastIngest.Observability;
using FastIngest.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastIngest.Tests.Ingest;

/// <summary>
/// The writer's group commit against a store whose flushes the test opens by hand: runs that arrive while the disk
/// flushes are committed together once it is done, unless a full batch waits, which is committed at once.
/// </summary>
public sealed class GroupCommitTests : IAsyncLifetime
{
    private const int MaxBatch = 3;
    private readonly GatedStore _store = new();
    private readonly RunBatchWriter _writer;

    public GroupCommitTests()
    {
        var options = new ServerOptions
        {
            Listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0),
            DataDirectory = Path.GetTempPath(),
            MaxBatchSize = MaxBatch,
        };
        _writer = new RunBatchWriter(_store, options, new ServerMetrics(), NullLogger<RunBatchWriter>.Instance);
    }

    [Fact]
    public async Task Runs_arriving_during_a_flush_are_committed_in_one_transaction_after_it()
    {
        var first = Publish("r1");
        await _store.FlushStarted(1);

        var waiting = new[] { Publish("r2"), Publish("r3") }; // fewer than a batch: they wait for the flush
        _store.OpenFlush(1);
        await first;
        await _store.FlushStarted(2);
        _store.OpenFlush(2);
        await Task.WhenAll(waiting);

        AssertLog("commit r1", "flush 1", "flushed 1", "commit r2,r3", "flush 2", "flushed 2");
    }

    [Fact]
    public async Task A_full_batch_is_committed_while_the_disk_still_flushes()
    {
        var first = Publish("r1");
        await _store.FlushStarted(1);

        var full = new[] { Publish("r2"), Publish("r3"), Publish("r4") }; // a full batch: committed without waiting
        await _store.Committed(2);
        Assert.False(first.IsCompleted, "r1 was answered before its flush ended");
        _store.OpenFlush(1);
        await first;
        await _store.FlushStarted(2);
        _store.OpenFlush(2);
        await Task.WhenAll(full);

        AssertLog("commit r1", "flush 1", "commit r2,r3,r4", "flushed 1", "flush 2", "flushed 2");
        Assert.All(full, t => Assert.True(t.Result.Committed && t.Result.Outcome == RunWriteOutcome.Created, $"got {t.Result}"));
    }

    [Fact]
    public async Task A_failed_flush_answers_every_run_it_covered_not_stored()
    {
        var first = Publish("r1");
        await _store.FlushStarted(1);
        var waiting = Publish("r2");
        _store.FailFlush(1);

        Assert.False((await first).Committed, "r1 was acknowledged although its flush failed");
        await _store.FlushStarted(2);
        _store.OpenFlush(2);
        Assert.True((await waiting).Committed, $"r2, committed after the failed flush, got {await waiting}");
    }

    [Fact]
    public async Task A_queued_write_is_run_during_a_flush_and_the_runs_held_so_far_are_committed_before_it()
    {
        var first = Publish("r1");
        await _store.FlushStarted(1);
        var held = Publish("r2");
        var write = new QueuedWrite<int>("test", durable: false, () =>
        {
            _store.Note("write");
            return 1;
        });
        Assert.True(_writer.TryEnqueue(write), "the writer refused the write");

        Assert.Equal(1, await write.Task.WaitAsync(TimeSpan.FromSeconds(30))); // flush 1 is still closed
        AssertLog("commit r1", "flush 1", "commit r2", "write");
        Assert.False(first.IsCompleted || held.IsCompleted, "a run was answered before a flush covered it");
        _store.OpenEveryFlush();
        Assert.True((await first).Committed && (await held).Committed, $"got {await first} and {await held}");
    }

    [Fact]
    public async Task Shutdown_during_a_flush_commits_and_answers_every_held_run()
    {
        var first = Publish("r1");
        await _store.FlushStarted(1);
        var held = new[] { Publish("r2"), Publish("r3") };

        var disposing = _writer.DisposeAsync().AsTask();
        await _store.Committed(2); // shutdown ends the hold: the held runs are committed while flush 1 is still closed
        _store.OpenEveryFlush();
        await disposing.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True((await first).Committed, $"r1 got {await first}");
        Assert.All(held, t => Assert.True(t.Result.Committed, $"a held run got {t.Result}"));
        AssertLog("commit r1", "flush 1", "commit r2,r3", "flushed 1", "flush 2", "flushed 2");
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        _store.OpenEveryFlush();
        await _writer.DisposeAsync(); // a second dispose (after the shutdown test's) only waits for the finished loops
    }

    /// <summary>The store saw exactly these commits and flushes, in this order.</summary>
    private void AssertLog(params string[] expected) =>
        Assert.True(_store.Log.SequenceEqual(expected), $"got: {string.Join(" | ", _store.Log)}");

    private Task<IngestResult> Publish(string runId)
    {
        Assert.True(_writer.TryPublish(new RunRecord
        {
            ProjectKey = 1,
            RunId = runId,
            Passed = true,
            DurationMs = 1,
            TimestampMs = 1_700_000_000_000,
            Fingerprint = 1,
            ReceivedAtMs = 1_700_000_000_000,
        }, out var completion), $"the queue refused {runId}");
        return completion;
    }

    /// <summary>Commits at once and logs them; each flush waits until the test opens (or fails) it.</summary>
    private sealed class GatedStore : IRunBatchStore
    {
        private readonly Lock _lock = new();
        private readonly List<string> _log = [];
        private readonly List<TaskCompletionSource> _flushStarted = [];
        private readonly List<TaskCompletionSource<bool>> _flushGate = [];
        private readonly List<TaskCompletionSource> _committed = [];
        private bool _openAll;
        private int _flushes;
        private int _commits;

        public IReadOnlyList<string> Log
        {
            get
            {
                lock (_lock)
                {
                    return [.. _log];
                }
            }
        }

        public Task FlushStarted(int n) => Slot(_flushStarted, n).Task.WaitAsync(TimeSpan.FromSeconds(30));

        public Task Committed(int n) => Slot(_committed, n).Task.WaitAsync(TimeSpan.FromSeconds(30));

        public bool FlushesSeparately => true;

        public void Note(string entry)
        {
            lock (_lock)
            {
                _log.Add(entry);
            }
        }

        public void OpenFlush(int n) => Gate(n).TrySetResult(true);

        public void FailFlush(int n) => Gate(n).TrySetResult(false);

        public void OpenEveryFlush()
        {
            lock (_lock)
            {
                _openAll = true;
                foreach (var gate in _flushGate)
                {
                    gate.TrySetResult(true);
                }
            }
        }

        public ValueTask CommitAsync(ReadOnlyMemory<RunRecord> runs, Memory<RunWriteOutcome> outcomes)
        {
            outcomes.Span.Clear(); // every run Created (the enum's zero)
            int n;
            lock (_lock)
            {
                _log.Add("commit " + string.Join(',', runs.ToArray().Select(static r => r.RunId)));
                n = ++_commits;
            }

            Slot(_committed, n).TrySetResult();
            return ValueTask.CompletedTask;
        }

        public async ValueTask MakeDurableAsync()
        {
            int n;
            lock (_lock)
            {
                n = ++_flushes;
                _log.Add($"flush {n}");
            }

            Slot(_flushStarted, n).TrySetResult();
            var ok = await Gate(n).Task;
            lock (_lock)
            {
                _log.Add(ok ? $"flushed {n}" : $"flush {n} failed");
            }

            if (!ok)
            {
                throw new IOException($"flush {n} failed (test)");
            }
        }

        public void Dispose()
        {
        }

        private TaskCompletionSource<bool> Gate(int n)
        {
            lock (_lock)
            {
                var gate = Slot(_flushGate, n);
                if (_openAll)
                {
                    gate.TrySetResult(true);
                }

                return gate;
            }
        }

        private TaskCompletionSource Slot(List<TaskCompletionSource> slots, int n) =>
            Slot(slots, n, static () => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

        private TaskCompletionSource<bool> Slot(List<TaskCompletionSource<bool>> slots, int n) =>
            Slot(slots, n, static () => new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously));

        /// <summary>The n-th signal (from 1), made on first use by either side; the test's awaits never run inline in the writer.</summary>
        private T Slot<T>(List<T> slots, int n, Func<T> make)
        {
            lock (_lock)
            {
                while (slots.Count < n)
                {
                    slots.Add(make());
                }

                return slots[n - 1];
            }
        }
    }
}
