using System.Net;

namespace FastIngest.RateLimiting;

/// <summary>
/// The network a client address belongs to for guess counting: its IPv4 /24 or IPv6 /64. One attacker rarely
/// controls one exact address, but a guesser elsewhere on the internet never shares a holder's /24.
/// </summary>
public static class ClientNetwork
{
    public static string Of(IPAddress? address)
    {
        if (address is null)
        {
            return "unknown";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var length);
        return length == 4 ? $"{bytes[0]}.{bytes[1]}.{bytes[2]}.0/24" : $"{Convert.ToHexString(bytes[..8])}/64";
    }
}
