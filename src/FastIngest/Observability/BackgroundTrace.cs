using System.Diagnostics;

namespace FastIngest.Observability;

/// <summary>
/// Background work under a trace, so its log lines carry <c>trace_id</c> and <c>span_id</c> like a request's: work
/// done for a request (a deletion's job, a queued write) continues that request's trace as a child span; work of its
/// own (a retention pass) starts a trace of its own. Log lines read <see cref="Activity.Current"/>; no listener needed.
/// </summary>
public static class BackgroundTrace
{
    /// <summary>The trace of the code running now (a request's), to continue later on another thread.</summary>
    public static ActivityContext? Capture() => Activity.Current is { IdFormat: ActivityIdFormat.W3C } current ? current.Context : null;

    /// <summary>A span continuing <paramref name="parent"/> (or a new trace without one); dispose it when the work ends.</summary>
    public static Activity Start(string operation, ActivityContext? parent = null)
    {
        var activity = new Activity(operation);
        activity.SetIdFormat(ActivityIdFormat.W3C);
        if (parent is { } context)
        {
            activity.SetParentId(context.TraceId, context.SpanId, context.TraceFlags);
            activity.TraceStateString = context.TraceState;
        }
        else
        {
            Activity.Current = null; // a trace of its own, whatever ran before it on this flow (restored when it stops)
        }

        return activity.Start();
    }
}
