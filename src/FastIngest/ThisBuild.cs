using System.Reflection;

namespace FastIngest;

internal static class ThisBuild
{
    public static string Version { get; } =
        typeof(ThisBuild).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? "0.0.0";
}
