using FastIngest.Configuration;
using FastIngest.RateLimiting;

namespace FastIngest.Ingest;

/// <summary>
/// Admission for large ingest requests: every JUnit upload and every JSON body over
/// <see cref="IngestEndpoint.SmallBodyBytes"/> (or of unknown length) holds a slot from before its body is read
/// until its run is committed. The memory large uploads can hold is then bounded by the slot count, whatever
/// the number of connections; small runs never wait here. One tenant (an org) holds at most half the slots, so
/// six slow uploads from one tenant can no longer hold every slot while another tenant's small report waits
/// for a 503.
/// </summary>
public sealed class UploadSlots(ServerOptions options) : FairSlots(options.UploadSlots, options.UploadSlots / 2);
