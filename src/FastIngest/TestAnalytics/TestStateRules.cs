namespace FastIngest.TestAnalytics;

/// <summary>
/// The rules that classify tests, in one place (README, Per-test analytics, says the same):
/// <list type="bullet">
/// <item><b>flaky</b>: in the window it failed then passed on a retry inside one run, or it both passed and failed
/// on one commit (every run of the commit counts; a first failure is checked against the newest
/// <see cref="MaxCommitRuns"/> earlier ones); a commit counts once per test; flakes before a reset do not count.</item>
/// <item><b>broken</b>: failed on every one of at least <see cref="BrokenMinExecutions"/> executions in the
/// window, and not flaky.</item>
/// <item><b>new</b>: first seen in the window.</item>
/// <item><b>fixed</b>: it flaked in the window, but not in the last <see cref="FixedAfterDays"/> days (or only
/// before a reset), and it ran since its last flake. A test can be flaky and fixed at once: flaky over a 30-day
/// window, quiet for the last week.</item>
/// </list>
/// A run in which more than <see cref="InfraFailureShare"/> of its tests failed (with at least
/// <see cref="InfraMinTests"/> tests that ran) is an infrastructure failure: its executions are counted apart and
/// take no part in flaky, broken or failure rates (they still show in failure groups).
/// </summary>
public sealed record TestStateRules
{
    /// <summary>Earlier runs of the same commit a first failure is checked against (newest first); bounds a fold's work.</summary>
    public const int MaxCommitRuns = 1000;

    public double InfraFailureShare { get; init; } = 0.5;

    public int InfraMinTests { get; init; } = 10;

    public int BrokenMinExecutions { get; init; } = 3;

    public int FixedAfterDays { get; init; } = 7;

    /// <summary>Whether a run with <paramref name="ran"/> tests that passed or failed, <paramref name="failed"/> of them failing, is an infrastructure failure.</summary>
    public bool IsInfrastructureFailure(long ran, long failed) => ran >= InfraMinTests && failed > ran * InfraFailureShare;
}
