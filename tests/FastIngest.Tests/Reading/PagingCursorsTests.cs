using System.Buffers.Binary;
using System.Buffers.Text;
using System.IO.Hashing;
using System.Net;
using System.Security.Cryptography;
using FastIngest.Reading;
using FastIngest.Tests.Infrastructure;

namespace FastIngest.Tests.Reading;

public sealed class PagingCursorsTests
{
    private static readonly byte[] s_secret = RandomNumberGenerator.GetBytes(32);

    [Fact]
    public void CursorRoundTripsForTheFiltersItWasIssuedFor()
    {
        using var cursors = new PagingCursors(s_secret);
        var text = cursors.Encode(1_767_225_600_000, 123_456, "runs|7|True|||0:");

        Assert.True(cursors.TryDecode(text, "runs|7|True|||0:", out var position));
        Assert.Equal((1_767_225_600_000L, 123_456L), position);
    }

    [Fact]
    public void EveryEditedByteAndEveryOtherFilterOrKeyIsRefused()
    {
        using var cursors = new PagingCursors(s_secret);
        var bytes = Base64Url.DecodeFromChars(cursors.Encode(42, 7, "f"));
        for (var i = 0; i < bytes.Length; i++)
        {
            for (var bit = 0; bit < 8; bit++)
            {
                var edited = (byte[])bytes.Clone();
                edited[i] ^= (byte)(1 << bit);
                Assert.False(cursors.TryDecode(Base64Url.EncodeToString(edited), "f", out _), $"byte {i} bit {bit} edited was accepted");
            }
        }

        var text = Base64Url.EncodeToString(bytes);
        Assert.False(cursors.TryDecode(text, "g", out _));
        Assert.False(cursors.TryDecode(text[..^1], "f", out _));
        Assert.False(cursors.TryDecode(text + "A", "f", out _));
        using var otherServer = new PagingCursors(RandomNumberGenerator.GetBytes(32));
        Assert.False(otherServer.TryDecode(text, "f", out _));
    }

    [Fact]
    public void CursorCarriesNeitherTheInternalIdNorTheTimestampInTheClear()
    {
        using var cursors = new PagingCursors(s_secret);
        const long Timestamp = 1_767_225_600_000, Id = 987_654;
        var bytes = Base64Url.DecodeFromChars(cursors.Encode(Timestamp, Id, "f"));
        Span<byte> id = stackalloc byte[8], timestamp = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(id, Id);
        BinaryPrimitives.WriteInt64BigEndian(timestamp, Timestamp);

        Assert.True(bytes.AsSpan().IndexOf(id[5..]) < 0, $"the id's low bytes appear in {Convert.ToHexString(bytes)}");
        Assert.True(bytes.AsSpan().IndexOf(timestamp[2..]) < 0, $"the timestamp appears in {Convert.ToHexString(bytes)}");
    }

    [Fact]
    public async Task ForgedCursorOfTheOldChecksummedFormatIsA400AndARealOneSurvivesARestart()
    {
        var directory = Directory.CreateTempSubdirectory("fastingest-cursor-").FullName;
        var admin = FastIngest.Auth.ApiTokenFormat.Generate(FastIngest.Auth.TokenScope.Admin).Token;
        string cursor;
        Tenant tenant;
        await using (var server = await TestServer.StartAsync(directory, admin))
        {
            tenant = await server.CreateTenantAsync("cursor-restart");
            for (var i = 0; i < 3; i++)
            {
                using var run = await server.IngestAsync(tenant.ProjectToken, TestServer.Run($"c-{i}", timestamp: $"2026-01-1{i}T10:00:00Z"));
                await Json.ReadAsync(run, HttpStatusCode.Created);
            }

            using var first = await server.SendAsync(HttpMethod.Get, "/v1/runs?limit=1", tenant.ProjectToken);
            cursor = (await Json.ReadAsync(first, HttpStatusCode.OK)).GetProperty("next_cursor").GetString()!;

            // What an attacker could build before: any position, a CRC32 anyone can compute.
            Span<byte> forged = stackalloc byte[24];
            BinaryPrimitives.WriteInt64BigEndian(forged, long.MaxValue);
            BinaryPrimitives.WriteInt64BigEndian(forged[8..], long.MaxValue);
            BinaryPrimitives.WriteUInt32BigEndian(forged[20..], Crc32.HashToUInt32(forged[..20]));
            using var refused = await server.SendAsync(HttpMethod.Get, $"/v1/runs?limit=1&cursor={Base64Url.EncodeToString(forged)}", tenant.ProjectToken);
            Assert.Contains("cursor", Json.ErrorFields(await Json.ReadProblemAsync(refused, HttpStatusCode.BadRequest)));
        }

        await using var restarted = await TestServer.StartAsync(directory, admin);
        using var next = await restarted.SendAsync(HttpMethod.Get, $"/v1/runs?limit=1&cursor={cursor}", tenant.ProjectToken);
        var runs = (await Json.ReadAsync(next, HttpStatusCode.OK)).GetProperty("runs");
        Assert.Equal("c-1", runs[0].GetProperty("run_id").GetString());
        Directory.Delete(directory, recursive: true);
    }
}
