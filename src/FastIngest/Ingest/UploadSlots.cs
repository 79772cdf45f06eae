using FastIngest.Configuration;
using FastIngest.RateLimiting;

namespace FastIngest.Ingest;

/// <summary>
/// Admission for large ingest requests: every JUnit upload and every JSON body over
/// <see cref="IngestEndpoint.SmallBodyBytes"/> (or of unknown length) holds a slot from the moment its body is in
/// (<see cref="UploadSpool"/>) until its run is committed. The memory and CPU that parsing large uploads takes
/// are then bounded by the slot count, whatever the number of connections; small runs never wait here. One
/// tenant (an org) holds at most half the slots, and a freed slot goes to the waiting tenant holding fewest.
/// </summary>
public sealed class UploadSlots(ServerOptions options)
    : FairSlots(options.UploadSlots, options.UploadSlots / 2, wait: options.UploadSlotWait);
