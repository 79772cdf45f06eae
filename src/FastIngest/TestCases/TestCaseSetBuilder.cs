using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using FastIngest.Ingest;
using FastIngest.Storage;

namespace FastIngest.TestCases;

/// <summary>
/// Collects a run's test cases one at a time, from either the JSON body or a streamed JUnit file, validating
/// each against <see cref="TestCaseLimits"/> as it arrives so an oversized upload is refused before it is held.
/// Attempts are numbered per (suite, name): given explicitly, or by order of appearance, which is how JUnit
/// writers report reruns (the same test case repeated).
/// </summary>
public sealed class TestCaseSetBuilder : IDisposable
{
    private readonly TestCaseLimits _limits;
    private readonly List<TestCase> _cases = [];
    private readonly Dictionary<(string Suite, string Name), TestState> _tests = [];
    private readonly Dictionary<string, string> _suites = new(StringComparer.Ordinal);
    private readonly XxHash128 _fingerprint = new();
    private byte[] _scratch = ArrayPool<byte>.Shared.Rent(4096);
    private long _nameChars;
    private long _messageChars;
    private long _totalDurationMs;

    public TestCaseSetBuilder(TestCaseLimits limits) => _limits = limits;

    public int Count => _cases.Count;

    /// <summary>Adds one test case, or returns why it cannot be accepted (the caller names where it was).</summary>
    public string? TryAdd(string suite, string name, string? file, TestCaseStatus status, long durationMs, int? attempt, string? failureMessage)
    {
        if (_cases.Count >= _limits.MaxTestCases)
        {
            return $"a run may carry at most {_limits.MaxTestCases} test cases";
        }

        if (name.Length is 0 or > TestCaseLimits.MaxNameLength)
        {
            return $"name must be 1 to {TestCaseLimits.MaxNameLength} characters";
        }

        if (suite.Length > TestCaseLimits.MaxSuiteLength)
        {
            return $"suite must be at most {TestCaseLimits.MaxSuiteLength} characters";
        }

        if (file is { Length: 0 or > TestCaseLimits.MaxFileLength })
        {
            return $"file must be 1 to {TestCaseLimits.MaxFileLength} characters";
        }

        if (durationMs is < 0 or > IngestFields.MaxDurationMs)
        {
            return $"duration must be from 0 to {IngestFields.MaxDurationMs} ms";
        }

        // A test is named by its suite, name and file: a NUL there is refused (no database backend stores one the
        // same way). In a failure message it is only text gone wrong, shown as U+FFFD.
        if (suite.Contains('\0', StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal) || (file?.Contains('\0', StringComparison.Ordinal) ?? false))
        {
            return "suite, name and file must not contain NUL characters";
        }

        failureMessage = failureMessage?.Replace('\0', '\uFFFD');
        failureMessage = Trim(failureMessage,
            _messageChars < _limits.MessageBudgetChars ? TestCaseLimits.MaxFailureMessageLength : TestCaseLimits.ShortFailureMessageLength);
        suite = Intern(suite);
        ref var state = ref CollectionsMarshal.GetValueRefOrAddDefault(_tests, (suite, name), out _);
        var number = attempt ?? state.HighestAttempt + 1;
        if (number is < 1 or > TestCaseLimits.MaxAttempt)
        {
            return $"attempt must be from 1 to {TestCaseLimits.MaxAttempt}";
        }

        var bit = 1UL << (number - 1);
        if ((state.AttemptsSeen & bit) != 0)
        {
            return $"test '{Shorten(suite)}' / '{Shorten(name)}' attempt {number} appears more than once";
        }

        state.AttemptsSeen |= bit;
        if (number > state.HighestAttempt)
        {
            state.HighestAttempt = number;
            state.FinalStatus = status;
        }

        _nameChars += name.Length + (file?.Length ?? 0);
        if (_nameChars > _limits.MaxNameChars)
        {
            return $"the run's test names, suites and files exceed {_limits.MaxNameChars} characters";
        }

        _messageChars += failureMessage?.Length ?? 0;

        var testCase = new TestCase(suite, name, file, status, durationMs, number, failureMessage);
        _cases.Add(testCase);
        _totalDurationMs = Math.Min(_totalDurationMs + durationMs, IngestFields.MaxDurationMs);
        AppendToFingerprint(testCase);
        return null;
    }

    /// <summary>The finished set. Counts cover each test once, by its highest attempt.</summary>
    public TestCaseSet Build()
    {
        long passed = 0, failed = 0, skipped = 0;
        foreach (var state in _tests.Values)
        {
            switch (state.FinalStatus)
            {
                case TestCaseStatus.Passed: passed++; break;
                case TestCaseStatus.Skipped: skipped++; break;
                default: failed++; break;
            }
        }

        return new TestCaseSet(_cases, new RunCounts(_tests.Count, passed, failed, skipped), failed > 0,
            _fingerprint.GetCurrentHashAsUInt128(), _totalDurationMs);
    }

    public void Dispose()
    {
        if (_scratch.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_scratch);
            _scratch = [];
        }
    }

    private string Intern(string suite)
    {
        ref var interned = ref CollectionsMarshal.GetValueRefOrAddDefault(_suites, suite, out var exists);
        if (!exists)
        {
            interned = suite;
            _nameChars += suite.Length;
        }

        return interned!;
    }

    private static string? Trim(string? message, int maxLength)
    {
        if (message is null)
        {
            return null;
        }

        var trimmed = message.AsSpan().Trim();
        if (trimmed.IsEmpty)
        {
            return null;
        }

        if (trimmed.Length > maxLength)
        {
            // Cut on a whole UTF-16 unit boundary: never leave half a surrogate pair behind.
            var cut = maxLength - 1;
            if (char.IsHighSurrogate(trimmed[cut - 1]))
            {
                cut--;
            }

            return string.Concat(trimmed[..cut], "…");
        }

        return trimmed.Length == message.Length ? message : trimmed.ToString();
    }

    /// <summary>Canonical fields, each length-prefixed, so ("ab","c") and ("a","bc") never hash alike.</summary>
    private void AppendToFingerprint(in TestCase testCase)
    {
        var needed = 64 + Encoding.UTF8.GetMaxByteCount(
            testCase.Suite.Length + testCase.Name.Length + (testCase.File?.Length ?? 0) + (testCase.FailureMessage?.Length ?? 0));
        if (_scratch.Length < needed)
        {
            ArrayPool<byte>.Shared.Return(_scratch);
            _scratch = ArrayPool<byte>.Shared.Rent(needed);
        }

        var buffer = _scratch.AsSpan();
        var at = 0;
        at += RunFingerprint.WriteText(buffer[at..], testCase.Suite);
        at += RunFingerprint.WriteText(buffer[at..], testCase.Name);
        at += RunFingerprint.WriteText(buffer[at..], testCase.File);
        buffer[at++] = (byte)testCase.Status;
        BinaryPrimitives.WriteInt64LittleEndian(buffer[at..], testCase.DurationMs);
        at += 8;
        BinaryPrimitives.WriteInt32LittleEndian(buffer[at..], testCase.Attempt);
        at += 4;
        at += RunFingerprint.WriteText(buffer[at..], testCase.FailureMessage);
        _fingerprint.Append(buffer[..at]);
    }

    /// <summary>A name as quoted in an error message: at most 80 characters.</summary>
    internal static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "…";

    private struct TestState
    {
        public ulong AttemptsSeen;
        public int HighestAttempt;
        public TestCaseStatus FinalStatus;
    }
}
