namespace FastIngest.TestCases;

/// <summary>A JUnit file that is well-formed XML but not a usable report, located by line and column.</summary>
public sealed class JUnitFormatException : Exception
{
    public JUnitFormatException(int line, int column, string problem)
        : base(line > 0 ? $"line {line}, column {column}: {problem}" : problem)
    {
    }
}
