using System.Text;

namespace FastIngest.Upload;

/// <summary>
/// What the CI system says about the job running the uploader: one table per CI (README, "The CI loop"). The run
/// id is the same for every job of one pipeline attempt and changes with a re-run attempt; the shard names the job
/// within it. The generic <c>FASTINGEST_*</c> variables win over any CI's own.
/// </summary>
public sealed record CiEnvironment(string Provider, string? RunId, string? Shard, string? Branch, string? Commit, string? BuildUrl)
{
    public static CiEnvironment Detect(Func<string, string?> env)
    {
        string? Get(string name) => env(name) is { Length: > 0 } value ? value : null;
        var detected = Get("GITHUB_ACTIONS") == "true" ? new CiEnvironment(
                "GitHub Actions",
                Join("gh", Get("GITHUB_RUN_ID"), Get("GITHUB_RUN_ATTEMPT") ?? "1"),
                Get("GITHUB_JOB"),
                Get("GITHUB_HEAD_REF") ?? Get("GITHUB_REF_NAME"),
                Get("GITHUB_SHA"),
                Get("GITHUB_RUN_ID") is { } run ? $"{Get("GITHUB_SERVER_URL") ?? "https://github.com"}/{Get("GITHUB_REPOSITORY")}/actions/runs/{run}" : null)
            : Get("GITLAB_CI") == "true" ? new CiEnvironment(
                "GitLab CI",
                Join("gl", Get("CI_PIPELINE_ID"), null),
                Attempt(Get("CI_JOB_NAME"), Get("CI_JOB_ID")),
                Get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") ?? Get("CI_COMMIT_REF_NAME"),
                Get("CI_COMMIT_SHA"),
                Get("CI_PIPELINE_URL"))
            : Get("BUILDKITE") == "true" ? new CiEnvironment(
                "Buildkite",
                Join("bk", Get("BUILDKITE_BUILD_ID"), null),
                Attempt(Attempt(Get("BUILDKITE_STEP_KEY") ?? Get("BUILDKITE_LABEL"), Get("BUILDKITE_PARALLEL_JOB")), Get("BUILDKITE_RETRY_COUNT")),
                Get("BUILDKITE_BRANCH"),
                Get("BUILDKITE_COMMIT"),
                Get("BUILDKITE_BUILD_URL"))
            : Get("CIRCLECI") == "true" ? new CiEnvironment(
                "CircleCI",
                Join("cc", Get("CIRCLE_WORKFLOW_ID"), null),
                Get("CIRCLE_JOB") is { } job ? (Get("CIRCLE_NODE_INDEX") is { } node ? $"{job}-{node}" : job) : null,
                Get("CIRCLE_BRANCH"),
                Get("CIRCLE_SHA1"),
                Get("CIRCLE_BUILD_URL"))
            : Get("TF_BUILD") is { } tf && tf.Equals("true", StringComparison.OrdinalIgnoreCase) ? new CiEnvironment(
                "Azure Pipelines",
                Join("az", Get("BUILD_BUILDID"), null),
                Attempt(Get("SYSTEM_JOBDISPLAYNAME") ?? Get("SYSTEM_JOBNAME"), Get("SYSTEM_JOBATTEMPT")),
                Get("SYSTEM_PULLREQUEST_SOURCEBRANCH") ?? Get("BUILD_SOURCEBRANCHNAME"),
                Get("BUILD_SOURCEVERSION"),
                Get("BUILD_BUILDID") is { } build ? $"{Get("SYSTEM_COLLECTIONURI")}{Get("SYSTEM_TEAMPROJECT")}/_build/results?buildId={build}" : null)
            : Get("JENKINS_URL") is not null ? new CiEnvironment(
                "Jenkins",
                Join("jk", Get("JOB_NAME"), Get("BUILD_NUMBER")),
                Get("STAGE_NAME"),
                Get("CHANGE_BRANCH") ?? Get("BRANCH_NAME") ?? Get("GIT_BRANCH"),
                Get("GIT_COMMIT"),
                Get("BUILD_URL"))
            : new CiEnvironment("none", null, null, null, null, null);

        return detected with
        {
            Provider = Get("FASTINGEST_RUN_ID") is not null && detected.Provider == "none" ? "FASTINGEST_* variables" : detected.Provider,
            RunId = Get("FASTINGEST_RUN_ID") ?? detected.RunId,
            Shard = Get("FASTINGEST_SHARD") ?? detected.Shard,
            Branch = Get("FASTINGEST_BRANCH") ?? detected.Branch,
            Commit = Get("FASTINGEST_COMMIT") ?? detected.Commit,
            BuildUrl = Get("FASTINGEST_BUILD_URL") ?? detected.BuildUrl,
        };
    }

    /// <summary>
    /// A job's name with what tells its retries and parallel copies apart (a GitLab job id, a Buildkite parallel index
    /// and retry count, an Azure job attempt). Each is a shard of the pipeline's run: a retried job with new reports
    /// joins the run as a shard of its own (its failures stay on record, which is how a flaky retry is seen), never
    /// a 409, and a re-run of the same upload step (same job) is a duplicate.
    /// </summary>
    private static string? Attempt(string? job, string? attempt) => job is null || attempt is null ? job : $"{job}-{attempt}";

    /// <summary>A run id from a CI's own ids, reduced to the characters run ids allow.</summary>
    private static string? Join(string prefix, string? id, string? attempt) =>
        id is null ? null : Sanitize(attempt is null ? $"{prefix}-{id}" : $"{prefix}-{id}-{attempt}");

    /// <summary>Run ids take letters, digits and <c>. _ : / -</c>; anything else becomes '-', at most 128 characters.</summary>
    public static string Sanitize(string value)
    {
        var builder = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            builder.Append(c <= 127 && Ingest.RunFieldRules.IsRunIdByte((byte)c) ? c : '-');
        }

        return builder.Length > Ingest.IngestFields.MaxRunIdLength ? builder.ToString(0, Ingest.IngestFields.MaxRunIdLength) : builder.ToString();
    }
}
