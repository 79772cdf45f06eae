using System.Buffers.Binary;

namespace FastIngest.Storage;

/// <summary>How a run's 128-bit content fingerprint is stored: 16 bytes, big-endian, on every backend.</summary>
public static class RunFingerprints
{
    public static void Write(UInt128 value, Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, (ulong)(value >> 64));
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], (ulong)value);
    }
}
