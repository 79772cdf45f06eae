using System.Diagnostics;

namespace FastIngest.Storage;

// Every call of the storage interfaces, timed by StorageTimer: one histogram series per call name and one log line
// for each call slower than --slow-query-ms, whatever the backend. One line per method, written out (Native AOT keeps
// no dynamic proxies); a method added to an interface does not compile until it is timed here too.

/// <summary><see cref="ITenantStore"/> with every call timed.</summary>
public sealed class TimedTenantStore(ITenantStore inner, StorageTimer timer) : ITenantStore
{
    public Task<(CreateResult Result, OrgRecord? Org)> CreateOrgAsync(string name, long nowMs) =>
        timer.TimeAsync("create_org", Stopwatch.GetTimestamp(), inner.CreateOrgAsync(name, nowMs));

    public ValueTask<OrgRecord?> FindOrgAsync(string orgId) =>
        timer.TimeAsync("find_org", Stopwatch.GetTimestamp(), inner.FindOrgAsync(orgId));

    public Task<(CreateResult Result, ProjectRecord? Project)> CreateProjectAsync(long orgKey, string name, long nowMs) =>
        timer.TimeAsync("create_project", Stopwatch.GetTimestamp(), inner.CreateProjectAsync(orgKey, name, nowMs));

    public ValueTask<ProjectRecord?> FindProjectAsync(string projectId) =>
        timer.TimeAsync("find_project", Stopwatch.GetTimestamp(), inner.FindProjectAsync(projectId));

    public ValueTask<IReadOnlyList<ProjectRecord>> ListProjectsAsync(long? orgKey) =>
        timer.TimeAsync("list_projects", Stopwatch.GetTimestamp(), inner.ListProjectsAsync(orgKey));

    public Task SetRetentionAsync(long projectKey, int? days) =>
        timer.TimeAsync("set_retention", Stopwatch.GetTimestamp(), inner.SetRetentionAsync(projectKey, days));

    public ValueTask<IReadOnlyList<(long ProjectKey, int Days)>> ProjectsWithRetentionAsync() =>
        timer.TimeAsync("projects_with_retention", Stopwatch.GetTimestamp(), inner.ProjectsWithRetentionAsync());

    public Task<bool> InsertTokenAsync(StoredToken token, string? issuedBy = null) =>
        timer.TimeAsync("insert_token", Stopwatch.GetTimestamp(), inner.InsertTokenAsync(token, issuedBy));

    public ValueTask<long> CountActiveTokensAsync(string scope, long? orgKey, long? projectKey, long nowMs) =>
        timer.TimeAsync("count_active_tokens", Stopwatch.GetTimestamp(), inner.CountActiveTokensAsync(scope, orgKey, projectKey, nowMs));

    public ValueTask<byte[]> CursorKeyAsync() =>
        timer.TimeAsync("cursor_key", Stopwatch.GetTimestamp(), inner.CursorKeyAsync());

    public ValueTask<StoredToken?> FindTokenAsync(string tokenId) =>
        timer.TimeAsync("find_token", Stopwatch.GetTimestamp(), inner.FindTokenAsync(tokenId));

    public ValueTask<IReadOnlyList<StoredToken>> ListProjectTokensAsync(long projectKey) =>
        timer.TimeAsync("list_project_tokens", Stopwatch.GetTimestamp(), inner.ListProjectTokensAsync(projectKey));

    public Task ReplaceSecretHashAsync(string tokenId, string expected, string replacement) =>
        timer.TimeAsync("replace_secret_hash", Stopwatch.GetTimestamp(), inner.ReplaceSecretHashAsync(tokenId, expected, replacement));

    public ValueTask<bool> HasActiveAdminTokenAsync() =>
        timer.TimeAsync("has_active_admin_token", Stopwatch.GetTimestamp(), inner.HasActiveAdminTokenAsync());

    public Task<bool> RevokeTokenAsync(string tokenId, long nowMs) =>
        timer.TimeAsync("revoke_token", Stopwatch.GetTimestamp(), inner.RevokeTokenAsync(tokenId, nowMs));

    public Task RecordTokenUseAsync(IReadOnlyList<(string TokenId, long LastUsedAtMs)> uses) =>
        timer.TimeAsync("record_token_use", Stopwatch.GetTimestamp(), inner.RecordTokenUseAsync(uses));

    public Task<bool> IsWritableAsync(TimeSpan timeout) =>
        timer.TimeAsync("is_writable", Stopwatch.GetTimestamp(), inner.IsWritableAsync(timeout));
}

/// <summary><see cref="IRunQueries"/> with every call timed.</summary>
public sealed class TimedRunQueries(IRunQueries inner, StorageTimer timer) : IRunQueries
{
    public ValueTask<StoredRun?> FindRunAsync(long projectKey, string runId) =>
        timer.TimeAsync("find_run", Stopwatch.GetTimestamp(), inner.FindRunAsync(projectKey, runId));

    public ValueTask<IReadOnlyList<ListedRun>> ListRunsAsync(RunListQuery query) =>
        timer.TimeAsync("list_runs", Stopwatch.GetTimestamp(), inner.ListRunsAsync(query));

    public ValueTask<IReadOnlyList<DailyRunStats>> DailyStatsAsync(long projectKey, string branch, long fromDay, long toDay) =>
        timer.TimeAsync("daily_stats", Stopwatch.GetTimestamp(), inner.DailyStatsAsync(projectKey, branch, fromDay, toDay));
}

/// <summary><see cref="ITestQueries"/> with every call timed.</summary>
public sealed class TimedTestQueries(ITestQueries inner, StorageTimer timer) : ITestQueries
{
    public Task FoldPendingAsync() =>
        timer.TimeAsync("fold_pending", Stopwatch.GetTimestamp(), inner.FoldPendingAsync());

    public ValueTask<IReadOnlyList<RunExecution>?> ListRunExecutionsAsync(long projectKey, string runId, TestCaseStatus? status, ExecutionPosition after, int limit) =>
        timer.TimeAsync("list_run_executions", Stopwatch.GetTimestamp(), inner.ListRunExecutionsAsync(projectKey, runId, status, after, limit));

    public ValueTask<IReadOnlyList<TestTotals>> WindowTotalsAsync(long projectKey, string branch, long sinceDay) =>
        timer.TimeAsync("window_totals", Stopwatch.GetTimestamp(), inner.WindowTotalsAsync(projectKey, branch, sinceDay));

    public ValueTask<IReadOnlyDictionary<long, Durations>> WindowDurationsAsync(long projectKey, string branch, long sinceDay, IReadOnlyCollection<long>? testIds) =>
        timer.TimeAsync("window_durations", Stopwatch.GetTimestamp(), inner.WindowDurationsAsync(projectKey, branch, sinceDay, testIds));

    public ValueTask<IReadOnlyDictionary<long, TestInfo>> TestsAsync(long projectKey, IReadOnlyCollection<long> testIds) =>
        timer.TimeAsync("tests", Stopwatch.GetTimestamp(), inner.TestsAsync(projectKey, testIds));

    public ValueTask<IReadOnlyList<TestDayRow>> TestDaysAsync(long testId, string branch, long sinceDay) =>
        timer.TimeAsync("test_days", Stopwatch.GetTimestamp(), inner.TestDaysAsync(testId, branch, sinceDay));

    public ValueTask<TestExecutionPage> TestExecutionsAsync(long projectKey, long testId, RunPosition? before, int limit) =>
        timer.TimeAsync("test_executions", Stopwatch.GetTimestamp(), inner.TestExecutionsAsync(projectKey, testId, before, limit));

    public ValueTask<IReadOnlyList<FailureOccurrence>> FailureOccurrencesAsync(long projectKey, long sinceDay, long? testId = null) =>
        timer.TimeAsync("failure_occurrences", Stopwatch.GetTimestamp(), inner.FailureOccurrencesAsync(projectKey, sinceDay, testId));

    public ValueTask<IReadOnlyDictionary<long, FailureGroupInfo>> FailureGroupsAsync(long projectKey, IReadOnlyCollection<long> groupIds) =>
        timer.TimeAsync("failure_groups", Stopwatch.GetTimestamp(), inner.FailureGroupsAsync(projectKey, groupIds));

    public Task<bool> ResetFlakyAsync(long projectKey, long testId, long nowMs, string resetBy) =>
        timer.TimeAsync("reset_flaky", Stopwatch.GetTimestamp(), inner.ResetFlakyAsync(projectKey, testId, nowMs, resetBy));
}

/// <summary><see cref="IQuarantineStore"/> with every call timed.</summary>
public sealed class TimedQuarantineStore(IQuarantineStore inner, StorageTimer timer) : IQuarantineStore
{
    public ValueTask<IReadOnlyList<QuarantineEntry>> ActiveAsync(long projectKey, long nowMs) =>
        timer.TimeAsync("active", Stopwatch.GetTimestamp(), inner.ActiveAsync(projectKey, nowMs));

    public Task<(QuarantineEntry Entry, bool Created)> PutAsync(long projectKey, string suite, string name, string reason, long? expiresAtMs, string by, long nowMs, bool byPolicy = false) =>
        timer.TimeAsync("put", Stopwatch.GetTimestamp(), inner.PutAsync(projectKey, suite, name, reason, expiresAtMs, by, nowMs, byPolicy));

    public ValueTask<int?> PolicyAsync(long projectKey) =>
        timer.TimeAsync("policy", Stopwatch.GetTimestamp(), inner.PolicyAsync(projectKey));

    public Task SetPolicyAsync(long projectKey, int? releaseAfterDays, string by, long nowMs) =>
        timer.TimeAsync("set_policy", Stopwatch.GetTimestamp(), inner.SetPolicyAsync(projectKey, releaseAfterDays, by, nowMs));

    public ValueTask<IReadOnlyList<(long ProjectKey, int ReleaseAfterDays)>> PoliciesAsync() =>
        timer.TimeAsync("policies", Stopwatch.GetTimestamp(), inner.PoliciesAsync());

    public Task<QuarantineEntry?> RemoveAsync(long projectKey, long entryKey, string by, long nowMs) =>
        timer.TimeAsync("remove", Stopwatch.GetTimestamp(), inner.RemoveAsync(projectKey, entryKey, by, nowMs));

    public ValueTask<IReadOnlyList<QuarantineChange>> ChangesAsync(long projectKey, int limit) =>
        timer.TimeAsync("changes", Stopwatch.GetTimestamp(), inner.ChangesAsync(projectKey, limit));
}

/// <summary><see cref="IConfirmTokenStore"/> with every call timed.</summary>
public sealed class TimedConfirmTokenStore(IConfirmTokenStore inner, StorageTimer timer) : IConfirmTokenStore
{
    public Task InsertAsync(ConfirmTokenRecord token) =>
        timer.TimeAsync("insert", Stopwatch.GetTimestamp(), inner.InsertAsync(token));

    public Task<ConfirmOutcome> TryConsumeAsync(string tokenHash, string action, string target, string credentialId, long nowMs) =>
        timer.TimeAsync("try_consume", Stopwatch.GetTimestamp(), inner.TryConsumeAsync(tokenHash, action, target, credentialId, nowMs));

    public Task<int> PurgeExpiredAsync(long beforeMs) =>
        timer.TimeAsync("purge_expired", Stopwatch.GetTimestamp(), inner.PurgeExpiredAsync(beforeMs));
}

/// <summary><see cref="IDataRemovalStore"/> with every call timed.</summary>
public sealed class TimedDataRemovalStore(IDataRemovalStore inner, StorageTimer timer) : IDataRemovalStore
{
    public ValueTask<long> CountRunsAsync(long projectKey, long? beforeMs) =>
        timer.TimeAsync("count_runs", Stopwatch.GetTimestamp(), inner.CountRunsAsync(projectKey, beforeMs));

    public Task<int> DeleteRunsBatchAsync(long projectKey, long? beforeMs, int batchSize) =>
        timer.TimeAsync("delete_runs_batch", Stopwatch.GetTimestamp(), inner.DeleteRunsBatchAsync(projectKey, beforeMs, batchSize));

    public Task<int> DeleteTestCasesBatchAsync(long projectKey, long? beforeMs, int batchSize, int maxRows) =>
        timer.TimeAsync("delete_test_cases_batch", Stopwatch.GetTimestamp(), inner.DeleteTestCasesBatchAsync(projectKey, beforeMs, batchSize, maxRows));

    public Task RebuildRollupsAfterPurgeAsync(long projectKey, long beforeMs) =>
        timer.TimeAsync("rebuild_rollups_after_purge", Stopwatch.GetTimestamp(), inner.RebuildRollupsAfterPurgeAsync(projectKey, beforeMs));

    public Task<IReadOnlyList<string>> RevokeProjectTokensAsync(long projectKey, long nowMs) =>
        timer.TimeAsync("revoke_project_tokens", Stopwatch.GetTimestamp(), inner.RevokeProjectTokensAsync(projectKey, nowMs));

    public Task<IReadOnlyList<string>?> BeginProjectDeletionAsync(long projectKey, long nowMs) =>
        timer.TimeAsync("begin_project_deletion", Stopwatch.GetTimestamp(), inner.BeginProjectDeletionAsync(projectKey, nowMs));

    public Task<(IReadOnlyList<long> ProjectKeys, IReadOnlyList<string> TokenIds)?> BeginOrgDeletionAsync(long orgKey, long nowMs) =>
        timer.TimeAsync("begin_org_deletion", Stopwatch.GetTimestamp(), inner.BeginOrgDeletionAsync(orgKey, nowMs));

    public ValueTask<(IReadOnlyList<long> ProjectKeys, IReadOnlyList<long> OrgKeys)> UnfinishedDeletionsAsync(long beganBeforeMs) =>
        timer.TimeAsync("unfinished_deletions", Stopwatch.GetTimestamp(), inner.UnfinishedDeletionsAsync(beganBeforeMs));

    public ValueTask<IReadOnlyList<long>> ProjectKeysOfAsync(long orgKey) =>
        timer.TimeAsync("project_keys_of", Stopwatch.GetTimestamp(), inner.ProjectKeysOfAsync(orgKey));

    public Task DeleteProjectAsync(long projectKey, CancellationToken cancellation = default) =>
        timer.TimeAsync("delete_project", Stopwatch.GetTimestamp(), inner.DeleteProjectAsync(projectKey, cancellation));

    public Task<IReadOnlyList<string>> DeleteOrgAsync(long orgKey) =>
        timer.TimeAsync("delete_org", Stopwatch.GetTimestamp(), inner.DeleteOrgAsync(orgKey));

    public Task<long> BackupAsync(string path, CancellationToken cancellationToken) =>
        timer.TimeAsync("backup", Stopwatch.GetTimestamp(), inner.BackupAsync(path, cancellationToken));
}
