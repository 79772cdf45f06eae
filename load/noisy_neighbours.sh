#!/usr/bin/env bash
# Noisy neighbours: a quiet tenant's latency beside each kind of abuse, in one run of one binary.
#
# For each abuse, a quiet tenant sends a steady mix of its everyday requests (a small JSON run, a small JUnit
# report, a cached GET /v1/runs) for DURATION seconds, first alone (the baseline row) and then while abusers do:
#   trickle  two colluding tenants each open six chunked JUnit uploads trickling at ~4 KiB/s
#   bomb     one tenant posts 530 KB gzip bombs (about 1000x inflation) from four connections
#   heavy    one tenant with 200,000 executions of history polls /v1/tests/flaky and /slowest from eight
#   mint     one org token creates project tokens (Argon2 each) from eight connections
# Prints one row per abuse: the quiet tenant's statuses and p50 / p99 / max latency, and what the abuser got.
# Server pinned to core 0, clients to core 1 when taskset is there. Loopback only.
# Usage: load/noisy_neighbours.sh <binary> [--duration 10] [--only trickle,bomb,heavy,mint]
set -euo pipefail
BINARY=${1:?usage: noisy_neighbours.sh <binary> [--duration S] [--only LIST]}
shift
DURATION=10
ONLY=trickle,bomb,heavy,mint
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "noisy_neighbours.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d /tmp/fastingest-noisy.XXXXXX)
PORT=$(( 20000 + RANDOM % 12000 )) # below the ephemeral range (32768+), where a client socket could hold it
SERVER_PIN=() CLIENT_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then SERVER_PIN=(taskset -c 0); CLIENT_PIN=(taskset -c 1); fi
"${SERVER_PIN[@]}" "$BINARY" --listen "127.0.0.1:$PORT" --data "$WORK/data" --log-level warning \
  --rate-ingest 100000 --rate-read 100000 --rate-manage 100000 >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.05; done

"${CLIENT_PIN[@]}" python3 - "$PORT" "$(cat "$WORK/data/admin-token")" "$DURATION" "$ONLY" "$SERVER" <<'PY'
import gzip, http.client, json, random, statistics, sys, threading, time

port, admin, duration, only, server_pid = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4].split(","), sys.argv[5]
random.seed(7)

def call(method, path, token, body=None, headers=None, timeout=120):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Authorization": "Bearer " + token}
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=h)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()

def tenant(name):
    _, org = call("POST", "/v1/orgs", admin, {"name": name})
    org = json.loads(org)["id"]
    _, project = call("POST", "/v1/projects", admin, {"org_id": org, "name": name})
    project = json.loads(project)["id"]
    tokens = {}
    for scope in ("ingest", "read"):
        _, t = call("POST", "/v1/tokens", admin, {"project_id": project, "scope": scope})
        tokens[scope] = json.loads(t)["token"]
    _, t = call("POST", "/v1/tokens", admin, {"org_id": org, "scope": "org"})
    tokens["org"] = json.loads(t)["token"]
    return {"org": org, "project": project, **tokens}

def cpu_seconds():
    with open(f"/proc/{server_pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0

quiet = tenant("quiet")
sequence = [0]

def quiet_load(seconds):
    """The quiet tenant's everyday mix, one request at a time; returns (statuses, latencies in ms)."""
    statuses, latencies = {}, []
    report = b'<testsuite name="q"><testcase classname="c" name="t1"/><testcase classname="c" name="t2"/></testsuite>'
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sequence[0] += 1
        n = sequence[0]
        t0 = time.monotonic()
        kind = n % 3
        if kind == 0:
            status, _ = call("POST", "/v1/ingest", quiet["ingest"],
                             {"run_id": f"q-{n}", "status": "passed", "duration_ms": 5, "timestamp": "2026-11-20T10:00:00Z"})
        elif kind == 1:
            status, _ = call("POST", f"/v1/ingest?run_id=qj-{n}", quiet["ingest"], report, {"Content-Type": "application/xml"})
        else:
            status, _ = call("GET", "/v1/runs?limit=20", quiet["read"])
        latencies.append(((time.monotonic() - t0) * 1000, kind))
        statuses[status] = statuses.get(status, 0) + 1
        time.sleep(0.02)
    return statuses, latencies

def summary(statuses, timed):
    def p50_p99_max(values):
        values = sorted(values)
        return f"{statistics.median(values):.0f} / {values[min(len(values) - 1, int(len(values) * 0.99))]:.0f} / {values[-1]:.0f}"
    per_kind = "; ".join(f"{label} {p50_p99_max([ms for ms, k in timed if k == kind])}"
                         for kind, label in ((0, "json"), (1, "junit"), (2, "read")))
    return (", ".join(f"{v} x {k}" for k, v in sorted(statuses.items())), p50_p99_max([ms for ms, _ in timed]) + f" ({per_kind})")

# --- abusers ---------------------------------------------------------------------------------------------
def trickle(stop, outcomes):
    colluders = [tenant(f"trickle-{i}") for i in range(2)]
    def one(token, i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        started = time.monotonic()
        try:
            conn.putrequest("POST", f"/v1/ingest?run_id=trickle-{i}-{random.random()}")
            for name, value in (("Authorization", "Bearer " + token), ("Content-Type", "application/xml"), ("Transfer-Encoding", "chunked")):
                conn.putheader(name, value)
            conn.endheaders()
            send = lambda data: conn.send(b"%x\r\n%s\r\n" % (len(data), data))
            send(b'<testsuite name="s"><testcase name="a"/>')
            while not stop.is_set():
                send(b"<!--" + b"." * 1017 + b"-->")  # 1 KiB every 250 ms: ~4 KiB/s
                time.sleep(0.25)
            send(b"</testsuite>")
            conn.send(b"0\r\n\r\n")
            outcomes.append(str(conn.getresponse().status))
        except Exception as e:
            outcomes.append(f"cut after {time.monotonic() - started:.0f} s")
    return [threading.Thread(target=one, args=(c["ingest"], i)) for c in colluders for i in range(6)]

def bomb(stop, outcomes):
    abuser = tenant("bomber")
    raw = gzip.compress(b'<testsuite name="s"><!--' + b" " * (512 * 1024 * 1024) + b"--></testsuite>", 9)
    def one():
        while not stop.is_set():
            status, _ = call("POST", f"/v1/ingest?run_id=bomb-{random.random()}", abuser["ingest"], raw,
                             {"Content-Type": "application/xml", "Content-Encoding": "gzip"})
            outcomes.append(str(status))
    print(f"  (bomb: {len(raw)} bytes of gzip, 512 MiB inflated)", file=sys.stderr)
    return [threading.Thread(target=one) for _ in range(4)]

heavy_tenant = []
def heavy(stop, outcomes):
    if not heavy_tenant:
        abuser = tenant("heavy")
        for r in range(40):  # 40 runs x 5,000 cases = 200,000 executions, every 50th test flaky
            cases = "".join(
                f'<testcase classname="c{i % 50}" name="t{i}" time="0.{i % 1000:03d}">'
                + ('<failure message="boom"/>' if i % 50 == 0 and r % 2 else "") + "</testcase>" for i in range(5000))
            body = gzip.compress(f'<testsuite name="s">{cases}</testsuite>'.encode())
            status, text = call("POST", f"/v1/ingest?run_id=h-{r}&commit_sha={r // 2:040x}&timestamp=2026-11-2{r % 5}T10:00:00Z",
                                abuser["ingest"], body, {"Content-Type": "application/xml", "Content-Encoding": "gzip"})
            assert status == 201, (status, text)
        heavy_tenant.append(abuser)
    abuser = heavy_tenant[0]
    def one(i):
        while not stop.is_set():
            path = "/v1/tests/flaky?window=365d" if i % 2 else "/v1/tests/slowest?window=365d"
            status, _ = call("GET", path, abuser["read"])
            outcomes.append(str(status))
    return [threading.Thread(target=one, args=(i,)) for i in range(8)]

def mint(stop, outcomes):
    abuser = tenant("minter")
    def one():
        while not stop.is_set():
            status, _ = call("POST", "/v1/tokens", abuser["org"], {"project_id": abuser["project"], "scope": "read"})
            outcomes.append(str(status))
    return [threading.Thread(target=one) for _ in range(8)]

abuses = {"trickle": trickle, "bomb": bomb, "heavy": heavy, "mint": mint}
quiet_load(2)  # warm every path and token
print(f"| Abuse | Quiet tenant ({duration:.0f} s) | Quiet p50 / p99 / max ms | Abuser's requests | Server CPU s |")
print("|---|---|---|---|---|")
for name in only:
    cpu0 = cpu_seconds()
    statuses, latencies = quiet_load(duration)
    s, l = summary(statuses, latencies)
    print(f"| none (before {name}) | {s} | {l} | - | {cpu_seconds() - cpu0:.1f} |", flush=True)
    stop, outcomes = threading.Event(), []
    threads = abuses[name](stop, outcomes)
    for t in threads: t.start()
    time.sleep(2)
    cpu0 = cpu_seconds()
    statuses, latencies = quiet_load(duration)
    cpu = cpu_seconds() - cpu0
    stop.set()
    for t in threads: t.join()
    counts = {}
    for o in outcomes: counts[o] = counts.get(o, 0) + 1
    s, l = summary(statuses, latencies)
    print(f"| {name} | {s} | {l} | {', '.join(f'{v} x {k}' for k, v in sorted(counts.items()))} | {cpu:.1f} |", flush=True)
PY
