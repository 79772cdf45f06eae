using System.Diagnostics;

namespace FastIngest.Storage;

// Every call of the storage interfaces, timed by StorageTimer: one histogram series per call name and one log line
// for each call slower than --slow-query-ms, whatever the backend. Written out per method (Native AOT keeps no
// dynamic proxies); a method added to an interface does not compile until it is timed here too.

/// <summary><see cref="ITenantStore"/> with every call timed.</summary>
public sealed class TimedTenantStore(ITenantStore inner, StorageTimer timer) : ITenantStore
{
    public Task<(CreateResult Result, OrgRecord? Org)> CreateOrgAsync(string name, long nowMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("create_org", started, inner.CreateOrgAsync(name, nowMs));
        }
        catch
        {
            timer.Record("create_org", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<OrgRecord?> FindOrgAsync(string orgId)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("find_org", started, inner.FindOrgAsync(orgId));
        }
        catch
        {
            timer.Record("find_org", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<(CreateResult Result, ProjectRecord? Project)> CreateProjectAsync(long orgKey, string name, long nowMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("create_project", started, inner.CreateProjectAsync(orgKey, name, nowMs));
        }
        catch
        {
            timer.Record("create_project", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<ProjectRecord?> FindProjectAsync(string projectId)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("find_project", started, inner.FindProjectAsync(projectId));
        }
        catch
        {
            timer.Record("find_project", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyList<ProjectRecord>> ListProjectsAsync(long? orgKey)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("list_projects", started, inner.ListProjectsAsync(orgKey));
        }
        catch
        {
            timer.Record("list_projects", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task SetRetentionAsync(long projectKey, int? days)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("set_retention", started, inner.SetRetentionAsync(projectKey, days));
        }
        catch
        {
            timer.Record("set_retention", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyList<(long ProjectKey, int Days)>> ProjectsWithRetentionAsync()
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("projects_with_retention", started, inner.ProjectsWithRetentionAsync());
        }
        catch
        {
            timer.Record("projects_with_retention", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<bool> InsertTokenAsync(StoredToken token, string? issuedBy = null)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("insert_token", started, inner.InsertTokenAsync(token, issuedBy));
        }
        catch
        {
            timer.Record("insert_token", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<long> CountActiveTokensAsync(string scope, long? orgKey, long? projectKey, long nowMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("count_active_tokens", started, inner.CountActiveTokensAsync(scope, orgKey, projectKey, nowMs));
        }
        catch
        {
            timer.Record("count_active_tokens", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<byte[]> CursorKeyAsync()
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("cursor_key", started, inner.CursorKeyAsync());
        }
        catch
        {
            timer.Record("cursor_key", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<StoredToken?> FindTokenAsync(string tokenId)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("find_token", started, inner.FindTokenAsync(tokenId));
        }
        catch
        {
            timer.Record("find_token", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyList<StoredToken>> ListProjectTokensAsync(long projectKey)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("list_project_tokens", started, inner.ListProjectTokensAsync(projectKey));
        }
        catch
        {
            timer.Record("list_project_tokens", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task ReplaceSecretHashAsync(string tokenId, string expected, string replacement)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("replace_secret_hash", started, inner.ReplaceSecretHashAsync(tokenId, expected, replacement));
        }
        catch
        {
            timer.Record("replace_secret_hash", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<bool> HasActiveAdminTokenAsync()
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("has_active_admin_token", started, inner.HasActiveAdminTokenAsync());
        }
        catch
        {
            timer.Record("has_active_admin_token", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<bool> RevokeTokenAsync(string tokenId, long nowMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("revoke_token", started, inner.RevokeTokenAsync(tokenId, nowMs));
        }
        catch
        {
            timer.Record("revoke_token", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task RecordTokenUseAsync(IReadOnlyList<(string TokenId, long LastUsedAtMs)> uses)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("record_token_use", started, inner.RecordTokenUseAsync(uses));
        }
        catch
        {
            timer.Record("record_token_use", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<bool> IsWritableAsync(TimeSpan timeout)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("is_writable", started, inner.IsWritableAsync(timeout));
        }
        catch
        {
            timer.Record("is_writable", started); // an embedded backend fails before it returns a task
            throw;
        }
    }
}

/// <summary><see cref="IRunQueries"/> with every call timed.</summary>
public sealed class TimedRunQueries(IRunQueries inner, StorageTimer timer) : IRunQueries
{
    public ValueTask<StoredRun?> FindRunAsync(long projectKey, string runId)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("find_run", started, inner.FindRunAsync(projectKey, runId));
        }
        catch
        {
            timer.Record("find_run", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyList<ListedRun>> ListRunsAsync(RunListQuery query)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("list_runs", started, inner.ListRunsAsync(query));
        }
        catch
        {
            timer.Record("list_runs", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyList<DailyRunStats>> DailyStatsAsync(long projectKey, string branch, long fromDay, long toDay)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("daily_stats", started, inner.DailyStatsAsync(projectKey, branch, fromDay, toDay));
        }
        catch
        {
            timer.Record("daily_stats", started); // an embedded backend fails before it returns a task
            throw;
        }
    }
}

/// <summary><see cref="ITestQueries"/> with every call timed.</summary>
public sealed class TimedTestQueries(ITestQueries inner, StorageTimer timer) : ITestQueries
{
    public Task FoldPendingAsync()
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("fold_pending", started, inner.FoldPendingAsync());
        }
        catch
        {
            timer.Record("fold_pending", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyList<RunExecution>?> ListRunExecutionsAsync(long projectKey, string runId, TestCaseStatus? status, ExecutionPosition after, int limit)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("list_run_executions", started, inner.ListRunExecutionsAsync(projectKey, runId, status, after, limit));
        }
        catch
        {
            timer.Record("list_run_executions", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyList<TestTotals>> WindowTotalsAsync(long projectKey, string branch, long sinceDay)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("window_totals", started, inner.WindowTotalsAsync(projectKey, branch, sinceDay));
        }
        catch
        {
            timer.Record("window_totals", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyDictionary<long, Durations>> WindowDurationsAsync(long projectKey, string branch, long sinceDay, IReadOnlyCollection<long>? testIds)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("window_durations", started, inner.WindowDurationsAsync(projectKey, branch, sinceDay, testIds));
        }
        catch
        {
            timer.Record("window_durations", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyDictionary<long, TestInfo>> TestsAsync(long projectKey, IReadOnlyCollection<long> testIds)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("tests", started, inner.TestsAsync(projectKey, testIds));
        }
        catch
        {
            timer.Record("tests", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyList<TestDayRow>> TestDaysAsync(long testId, string branch, long sinceDay)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("test_days", started, inner.TestDaysAsync(testId, branch, sinceDay));
        }
        catch
        {
            timer.Record("test_days", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<TestExecutionPage> TestExecutionsAsync(long projectKey, long testId, RunPosition? before, int limit)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("test_executions", started, inner.TestExecutionsAsync(projectKey, testId, before, limit));
        }
        catch
        {
            timer.Record("test_executions", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyList<FailureOccurrence>> FailureOccurrencesAsync(long projectKey, long sinceDay, long? testId = null)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("failure_occurrences", started, inner.FailureOccurrencesAsync(projectKey, sinceDay, testId));
        }
        catch
        {
            timer.Record("failure_occurrences", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyDictionary<long, FailureGroupInfo>> FailureGroupsAsync(long projectKey, IReadOnlyCollection<long> groupIds)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("failure_groups", started, inner.FailureGroupsAsync(projectKey, groupIds));
        }
        catch
        {
            timer.Record("failure_groups", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<bool> ResetFlakyAsync(long projectKey, long testId, long nowMs, string resetBy)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("reset_flaky", started, inner.ResetFlakyAsync(projectKey, testId, nowMs, resetBy));
        }
        catch
        {
            timer.Record("reset_flaky", started); // an embedded backend fails before it returns a task
            throw;
        }
    }
}

/// <summary><see cref="IQuarantineStore"/> with every call timed.</summary>
public sealed class TimedQuarantineStore(IQuarantineStore inner, StorageTimer timer) : IQuarantineStore
{
    public ValueTask<IReadOnlyList<QuarantineEntry>> ActiveAsync(long projectKey, long nowMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("active", started, inner.ActiveAsync(projectKey, nowMs));
        }
        catch
        {
            timer.Record("active", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<(QuarantineEntry Entry, bool Created)> PutAsync(long projectKey, string suite, string name, string reason, long? expiresAtMs, string by, long nowMs, bool byPolicy = false)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("put", started, inner.PutAsync(projectKey, suite, name, reason, expiresAtMs, by, nowMs, byPolicy));
        }
        catch
        {
            timer.Record("put", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<int?> PolicyAsync(long projectKey)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("policy", started, inner.PolicyAsync(projectKey));
        }
        catch
        {
            timer.Record("policy", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task SetPolicyAsync(long projectKey, int? releaseAfterDays, string by, long nowMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("set_policy", started, inner.SetPolicyAsync(projectKey, releaseAfterDays, by, nowMs));
        }
        catch
        {
            timer.Record("set_policy", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyList<(long ProjectKey, int ReleaseAfterDays)>> PoliciesAsync()
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("policies", started, inner.PoliciesAsync());
        }
        catch
        {
            timer.Record("policies", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<QuarantineEntry?> RemoveAsync(long projectKey, long entryKey, string by, long nowMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("remove", started, inner.RemoveAsync(projectKey, entryKey, by, nowMs));
        }
        catch
        {
            timer.Record("remove", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyList<QuarantineChange>> ChangesAsync(long projectKey, int limit)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("changes", started, inner.ChangesAsync(projectKey, limit));
        }
        catch
        {
            timer.Record("changes", started); // an embedded backend fails before it returns a task
            throw;
        }
    }
}

/// <summary><see cref="IConfirmTokenStore"/> with every call timed.</summary>
public sealed class TimedConfirmTokenStore(IConfirmTokenStore inner, StorageTimer timer) : IConfirmTokenStore
{
    public Task InsertAsync(ConfirmTokenRecord token)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("insert", started, inner.InsertAsync(token));
        }
        catch
        {
            timer.Record("insert", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<ConfirmOutcome> TryConsumeAsync(string tokenHash, string action, string target, string credentialId, long nowMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("try_consume", started, inner.TryConsumeAsync(tokenHash, action, target, credentialId, nowMs));
        }
        catch
        {
            timer.Record("try_consume", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<int> PurgeExpiredAsync(long beforeMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("purge_expired", started, inner.PurgeExpiredAsync(beforeMs));
        }
        catch
        {
            timer.Record("purge_expired", started); // an embedded backend fails before it returns a task
            throw;
        }
    }
}

/// <summary><see cref="IDataRemovalStore"/> with every call timed.</summary>
public sealed class TimedDataRemovalStore(IDataRemovalStore inner, StorageTimer timer) : IDataRemovalStore
{
    public string? BackupUnavailableReason => inner.BackupUnavailableReason;

    public ValueTask<long> CountRunsAsync(long projectKey, long? beforeMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("count_runs", started, inner.CountRunsAsync(projectKey, beforeMs));
        }
        catch
        {
            timer.Record("count_runs", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<int> DeleteRunsBatchAsync(long projectKey, long? beforeMs, int batchSize)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("delete_runs_batch", started, inner.DeleteRunsBatchAsync(projectKey, beforeMs, batchSize));
        }
        catch
        {
            timer.Record("delete_runs_batch", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<int> DeleteTestCasesBatchAsync(long projectKey, long? beforeMs, int batchSize, int maxRows)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("delete_test_cases_batch", started, inner.DeleteTestCasesBatchAsync(projectKey, beforeMs, batchSize, maxRows));
        }
        catch
        {
            timer.Record("delete_test_cases_batch", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task RebuildRollupsAfterPurgeAsync(long projectKey, long beforeMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("rebuild_rollups_after_purge", started, inner.RebuildRollupsAfterPurgeAsync(projectKey, beforeMs));
        }
        catch
        {
            timer.Record("rebuild_rollups_after_purge", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<IReadOnlyList<string>> RevokeProjectTokensAsync(long projectKey, long nowMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("revoke_project_tokens", started, inner.RevokeProjectTokensAsync(projectKey, nowMs));
        }
        catch
        {
            timer.Record("revoke_project_tokens", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<IReadOnlyList<string>?> BeginProjectDeletionAsync(long projectKey, long nowMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("begin_project_deletion", started, inner.BeginProjectDeletionAsync(projectKey, nowMs));
        }
        catch
        {
            timer.Record("begin_project_deletion", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<(IReadOnlyList<long> ProjectKeys, IReadOnlyList<string> TokenIds)?> BeginOrgDeletionAsync(long orgKey, long nowMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("begin_org_deletion", started, inner.BeginOrgDeletionAsync(orgKey, nowMs));
        }
        catch
        {
            timer.Record("begin_org_deletion", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<(IReadOnlyList<long> ProjectKeys, IReadOnlyList<long> OrgKeys)> UnfinishedDeletionsAsync(long beganBeforeMs)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("unfinished_deletions", started, inner.UnfinishedDeletionsAsync(beganBeforeMs));
        }
        catch
        {
            timer.Record("unfinished_deletions", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public ValueTask<IReadOnlyList<long>> ProjectKeysOfAsync(long orgKey)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("project_keys_of", started, inner.ProjectKeysOfAsync(orgKey));
        }
        catch
        {
            timer.Record("project_keys_of", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task DeleteProjectAsync(long projectKey, CancellationToken cancellation = default)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("delete_project", started, inner.DeleteProjectAsync(projectKey, cancellation));
        }
        catch
        {
            timer.Record("delete_project", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<IReadOnlyList<string>> DeleteOrgAsync(long orgKey)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("delete_org", started, inner.DeleteOrgAsync(orgKey));
        }
        catch
        {
            timer.Record("delete_org", started); // an embedded backend fails before it returns a task
            throw;
        }
    }

    public Task<long> BackupAsync(string path, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            return timer.TimeAsync("backup", started, inner.BackupAsync(path, cancellationToken));
        }
        catch
        {
            timer.Record("backup", started); // an embedded backend fails before it returns a task
            throw;
        }
    }
}
