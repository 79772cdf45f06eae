namespace FastIngest;

/// <summary>
/// Every log event the server writes, source-generated so that a disabled level costs one check and an
/// enabled one does not box through a params array. Event names are stable: operators alert on them.
/// Nothing here ever takes a token, a secret or a header value.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, EventName = "http_request", Level = LogLevel.Information,
        Message = "{Method} {Route} -> {Status} in {DurationMs} ms")]
    public static partial void Request(ILogger logger, string requestId, string method, string route, string path,
        int status, double durationMs, long? bytes, string? projectId);

    [LoggerMessage(EventId = 2, EventName = "http_requests_summary", Level = LogLevel.Information,
        Message = "{Method} {Route}: {Count} requests answered 2xx in the last second, slowest {MaxMs} ms")]
    public static partial void RequestsSummary(ILogger logger, string method, string route, long count, long ok, long created,
        long otherSuccess, double meanMs, double maxMs, string? slowestRequestId, string? slowestProjectId);

    [LoggerMessage(EventId = 10, EventName = "auth_failed", Level = LogLevel.Warning,
        Message = "Authentication failed: {Reason}")]
    public static partial void AuthFailed(ILogger logger, string requestId, string reason, string route, string? client);

    [LoggerMessage(EventId = 14, EventName = "rate_limited", Level = LogLevel.Warning,
        Message = "Rate limit '{Policy}' reached; retry after {RetryAfterSeconds} s")]
    public static partial void RateLimited(ILogger logger, string requestId, string policy, string tokenId, int retryAfterSeconds);

    [LoggerMessage(EventId = 11, EventName = "token_created", Level = LogLevel.Information,
        Message = "Token {TokenId} created with scope {Scope}")]
    public static partial void TokenCreated(ILogger logger, string requestId, string tokenId, string scope, string? orgId,
        string? projectId, string createdBy);

    [LoggerMessage(EventId = 12, EventName = "token_revoked", Level = LogLevel.Information,
        Message = "Token {TokenId} revoked")]
    public static partial void TokenRevoked(ILogger logger, string requestId, string tokenId, string revokedBy);

    [LoggerMessage(EventId = 13, EventName = "admin_token_ready", Level = LogLevel.Information,
        Message = "Admin credential is in place")]
    public static partial void AdminTokenReady(ILogger logger);

    [LoggerMessage(EventId = 15, EventName = "confirm_issued", Level = LogLevel.Information,
        Message = "Confirm token issued for {Action} on {Target}")]
    public static partial void ConfirmIssued(ILogger logger, string requestId, string action, string target, string credentialId);

    [LoggerMessage(EventId = 16, EventName = "confirm_consumed", Level = LogLevel.Warning,
        Message = "Confirm token consumed: performing {Action} on {Target}")]
    public static partial void ConfirmConsumed(ILogger logger, string requestId, string action, string target, string credentialId);

    [LoggerMessage(EventId = 17, EventName = "confirm_rejected", Level = LogLevel.Warning,
        Message = "Confirm token rejected for {Action} on {Target}: {Reason}")]
    public static partial void ConfirmRejected(ILogger logger, string requestId, string action, string target, string credentialId, string reason);

    [LoggerMessage(EventId = 18, EventName = "backup_written", Level = LogLevel.Information,
        Message = "Backup written to {Path} ({Bytes} bytes)")]
    public static partial void BackupWritten(ILogger logger, string requestId, string path, long bytes, string requestedBy);

    [LoggerMessage(EventId = 19, EventName = "retention_applied", Level = LogLevel.Information,
        Message = "Retention pass deleted {Deleted} runs")]
    public static partial void RetentionApplied(ILogger logger, long deleted);

    [LoggerMessage(EventId = 32, EventName = "retention_failed", Level = LogLevel.Error,
        Message = "Retention pass failed; it is retried on the next tick")]
    public static partial void RetentionFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 20, EventName = "org_created", Level = LogLevel.Information, Message = "Organization {OrgId} created")]
    public static partial void OrgCreated(ILogger logger, string requestId, string orgId, string createdBy);

    [LoggerMessage(EventId = 21, EventName = "project_created", Level = LogLevel.Information, Message = "Project {ProjectId} created in {OrgId}")]
    public static partial void ProjectCreated(ILogger logger, string requestId, string projectId, string orgId, string createdBy);

    [LoggerMessage(EventId = 30, EventName = "run_conflict", Level = LogLevel.Information,
        Message = "Run {RunId} already stored with different content; left unchanged")]
    public static partial void RunConflict(ILogger logger, string requestId, string projectId, string runId);

    [LoggerMessage(EventId = 34, EventName = "checkpoint_failed", Level = LogLevel.Warning,
        Message = "WAL checkpoint failed, retried on the next tick: {Error}")]
    public static partial void CheckpointFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 37, EventName = "rollup_fold_failed", Level = LogLevel.Warning,
        Message = "Folding roll-ups failed, retried on the next tick (the WAL is still checkpointed): {Error}")]
    public static partial void FoldFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 36, EventName = "auto_quarantine_failed", Level = LogLevel.Warning,
        Message = "The auto-quarantine policy could not be applied, retried in five minutes: {Error}")]
    public static partial void AutoQuarantineFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 35, EventName = "token_use_flush_failed", Level = LogLevel.Warning,
        Message = "Could not record token last-used times; kept for the next flush")]
    public static partial void TokenUseFlushFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 33, EventName = "run_failed_alone", Level = LogLevel.Error,
        Message = "Run {RunId} of project {ProjectId} broke a storage constraint and was left out of its batch (request {RequestId})")]
    public static partial void RunFailedAlone(ILogger logger, string requestId, string projectId, string runId);

    [LoggerMessage(EventId = 31, EventName = "batch_commit_failed", Level = LogLevel.Error,
        Message = "A batch of {Count} runs failed to commit; none was acknowledged (traces: {TraceIds})")]
    public static partial void BatchCommitFailed(ILogger logger, int count, string traceIds, Exception exception);

    [LoggerMessage(EventId = 40, EventName = "server_listening", Level = LogLevel.Information,
        Message = "fastingest {Version} listening on {Address}, database {Database} ({Durability})")]
    public static partial void Listening(ILogger logger, string version, string address, string database, string durability);

    [LoggerMessage(EventId = 41, EventName = "server_stopped", Level = LogLevel.Information,
        Message = "fastingest stopped; the ingest queue was drained")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = 50, EventName = "unhandled_error", Level = LogLevel.Error,
        Message = "Unhandled error while serving {Route}")]
    public static partial void Unhandled(ILogger logger, string requestId, string route, Exception exception);

    [LoggerMessage(EventId = 51, EventName = "job_failed", Level = LogLevel.Error,
        Message = "Job {JobId} ({Action} {Target}) failed")]
    public static partial void JobFailed(ILogger logger, string jobId, string action, string target, Exception exception);

    [LoggerMessage(EventId = 54, EventName = "sqlite_serialized", Level = LogLevel.Warning,
        Message = "SQLite was initialised before it could be configured ({Why}); it stays serialized, with allocation statistics: correct, but slower")]
    public static partial void SqliteSerialized(ILogger logger, string why);

    [LoggerMessage(EventId = 53, EventName = "slow_storage_call", Level = LogLevel.Warning,
        Message = "Storage call {Call} took {DurationMs} ms")]
    public static partial void SlowStorageCall(ILogger logger, string call, double durationMs);

    [LoggerMessage(EventId = 52, EventName = "job_finished", Level = LogLevel.Information,
        Message = "Job {JobId} ({Action} {Target}) ended {Status} after deleting {DeletedRuns} runs")]
    public static partial void JobFinished(ILogger logger, string jobId, string action, string target, string status, long deletedRuns);
}
