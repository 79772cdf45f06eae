using System.Globalization;

namespace FastIngest.Dashboard;

/// <summary>
/// Server-rendered SVG charts: labelled axes, a title and a text description for screen readers, no script.
/// Every label goes through <see cref="Html"/>, so values from uploads are encoded here as everywhere.
/// </summary>
public static class Charts
{
    private const int Width = 640;
    private const int Height = 180;
    private const int Left = 44;
    private const int Bottom = 24;
    private const int Top = 10;

    /// <summary>Stacked bars per day: passed (green) below failed (red).</summary>
    public static Html RunsPerDay(string title, IReadOnlyList<(string Day, long Passed, long Failed)> days)
    {
        var html = new Html();
        var max = Math.Max(1, days.Count == 0 ? 1 : days.Max(static d => d.Passed + d.Failed));
        var plotHeight = Height - Top - Bottom;
        var slot = (Width - Left) / (double)Math.Max(1, days.Count);
        html.Add($"<svg role=\"img\" aria-labelledby=\"runs-title runs-desc\" viewBox=\"0 0 {Width} {Height}\" width=\"{Width}\" height=\"{Height}\">");
        html.Add($"<title id=\"runs-title\">{title}</title><desc id=\"runs-desc\">{Summary(days)}</desc>");
        Axis(html, max, plotHeight, "runs");
        for (var i = 0; i < days.Count; i++)
        {
            var (day, passed, failed) = days[i];
            var x = Left + (i * slot) + 1;
            var w = Math.Max(1, slot - 2);
            var hp = plotHeight * passed / (double)max;
            var hf = plotHeight * failed / (double)max;
            var yPassed = Top + plotHeight - hp;
            html.Add($"<rect x=\"{x}\" y=\"{yPassed}\" width=\"{w}\" height=\"{hp}\" fill=\"#1f7a3d\"><title>{day}: {passed} passed</title></rect>");
            html.Add($"<rect x=\"{x}\" y=\"{yPassed - hf}\" width=\"{w}\" height=\"{hf}\" fill=\"#b42318\"><title>{day}: {failed} failed</title></rect>");
            if (i == days.Count - 1 || (i % 7 == 0 && days.Count - 1 - i >= 4))
            {
                html.Add($"<text x=\"{x}\" y=\"{Height - 6}\">{day[5..]}</text>");
            }
        }

        html.Add($"</svg>");
        return html;
    }

    /// <summary>One polyline per series over the same x positions; null values leave a gap.</summary>
    public static Html Lines(string id, string title, string unit, IReadOnlyList<string> labels, IReadOnlyList<(string Name, string Colour, IReadOnlyList<long?> Values)> series)
    {
        var html = new Html();
        var max = Math.Max(1, series.SelectMany(static s => s.Values).Where(static v => v is not null).Select(static v => v!.Value).DefaultIfEmpty(1).Max());
        var plotHeight = Height - Top - Bottom;
        var step = (Width - Left - 10) / (double)Math.Max(1, labels.Count - 1);
        html.Add($"<svg role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" viewBox=\"0 0 {Width} {Height}\" width=\"{Width}\" height=\"{Height}\">");
        html.Add($"<title id=\"{id}-title\">{title}</title><desc id=\"{id}-desc\">{string.Join("; ", series.Select(s => $"{s.Name}: {string.Join(", ", s.Values.Select(v => v?.ToString(CultureInfo.InvariantCulture) ?? "none"))} {unit}"))}</desc>");
        Axis(html, max, plotHeight, unit);
        foreach (var (name, colour, values) in series)
        {
            var points = new List<string>();
            for (var i = 0; i < values.Count; i++)
            {
                if (values[i] is { } value)
                {
                    var x = Left + (i * step);
                    var y = Top + plotHeight - (plotHeight * value / (double)max);
                    points.Add(string.Create(CultureInfo.InvariantCulture, $"{x:0.#},{y:0.#}"));
                }
            }

            html.Add($"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{string.Join(' ', points)}\"><title>{name}</title></polyline>");
        }

        for (var i = 0; i < labels.Count; i += Math.Max(1, labels.Count / 6))
        {
            html.Add($"<text x=\"{Left + (i * step)}\" y=\"{Height - 6}\">{labels[i]}</text>");
        }

        var legendX = Left + 8;
        foreach (var (name, colour, _) in series)
        {
            html.Add($"<rect x=\"{legendX}\" y=\"{Top}\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{legendX + 14}\" y=\"{Top + 9}\">{name}</text>");
            legendX += 90;
        }

        html.Add($"</svg>");
        return html;
    }

    /// <summary>One square per execution, oldest first: green passed, red failed, amber skipped.</summary>
    public static Html StatusStrip(IReadOnlyList<(string RunId, string Status)> executions)
    {
        var html = new Html();
        var width = Math.Max(20, executions.Count * 12);
        html.Add($"<svg role=\"img\" aria-labelledby=\"strip-title\" viewBox=\"0 0 {width} 16\" width=\"{width}\" height=\"16\">");
        html.Add($"<title id=\"strip-title\">Last {executions.Count} executions, oldest first: {string.Join(", ", executions.Select(e => e.Status))}</title>");
        for (var i = 0; i < executions.Count; i++)
        {
            var (runId, status) = executions[i];
            var colour = status switch { "passed" => "#1f7a3d", "skipped" => "#8a6d00", _ => "#b42318" };
            html.Add($"<rect x=\"{i * 12}\" y=\"2\" width=\"10\" height=\"12\" fill=\"{colour}\"><title>{runId}: {status}</title></rect>");
        }

        html.Add($"</svg>");
        return html;
    }

    private static void Axis(Html html, long max, int plotHeight, string unit)
    {
        html.Add($"<line x1=\"{Left}\" y1=\"{Top + plotHeight}\" x2=\"{Width}\" y2=\"{Top + plotHeight}\" stroke=\"#d8dde6\"/>");
        html.Add($"<text x=\"2\" y=\"{Top + 10}\">{max}</text><text x=\"2\" y=\"{Top + plotHeight}\">0</text>");
        html.Add($"<text x=\"2\" y=\"{Top + (plotHeight / 2)}\">{unit}</text>");
    }

    private static string Summary(IReadOnlyList<(string Day, long Passed, long Failed)> days) =>
        string.Join("; ", days.Where(static d => d.Passed + d.Failed > 0).Select(static d => $"{d.Day}: {d.Passed} passed, {d.Failed} failed"));
}
