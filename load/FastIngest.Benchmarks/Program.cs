using BenchmarkDotNet.Running;

namespace FastIngest.Benchmarks;

/// <summary>Micro-benchmarks beside the load scenarios. Run: ./build.sh microbench [BenchmarkDotNet args].</summary>
internal static class BenchmarkProgram
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(BenchmarkProgram).Assembly).Run(args);
}
