#!/usr/bin/env bash
# Noisy neighbour, upload edition: one tenant opens six chunked JUnit uploads that trickle at ~4 KiB/s (as a
# stuck or hostile CI job would) while another tenant posts small JUnit reports one after another. Prints the
# quiet tenant's statuses and latency (p50/max) and what became of the trickles. Loopback only.
# Usage: load/noisy_uploads.sh <binary> [--reports 20]
set -euo pipefail
BINARY=${1:?usage: noisy_uploads.sh <binary> [--reports N]}
shift
REPORTS=20
while [ $# -gt 0 ]; do
  case "$1" in
    --reports) REPORTS=$2; shift 2 ;;
    *) echo "noisy_uploads.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d /tmp/fastingest-noisy.XXXXXX)
PORT=$(( 20000 + RANDOM % 20000 ))
BASE="http://127.0.0.1:$PORT"
"$BINARY" --listen "127.0.0.1:$PORT" --data "$WORK/data" --log-level warning >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 200); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.05; done
ADMIN=$(cat "$WORK/data/admin-token")
json_field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }
new_tenant() {
  local org project
  org=$(curl -sf -XPOST "$BASE/v1/orgs" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' -d "{\"name\":\"$1\"}" | json_field id)
  project=$(curl -sf -XPOST "$BASE/v1/projects" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
    -d "{\"org_id\":\"$org\",\"name\":\"$1\"}" | json_field id)
  curl -sf -XPOST "$BASE/v1/tokens" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
    -d "{\"project_id\":\"$project\"}" | json_field token
}
HOG=$(new_tenant hog)
QUIET=$(new_tenant quiet)

python3 - "$PORT" "$HOG" "$QUIET" "$REPORTS" <<'PY'
import http.client, sys, threading, time, statistics
port, hog, quiet, reports = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
trickle_outcomes = []

def trickle(i):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.monotonic()
    try:
        conn.putrequest("POST", f"/v1/ingest?run_id=trickle-{i}")
        for name, value in (("Authorization", "Bearer " + hog), ("Content-Type", "application/xml"), ("Transfer-Encoding", "chunked")):
            conn.putheader(name, value)
        conn.endheaders()
        def chunk(data):
            conn.send(b"%x\r\n%s\r\n" % (len(data), data))
        chunk(b'<testsuite name="s"><testcase name="a"/>')
        filler = b"<!--" + b"." * 1017 + b"-->"  # 1 KiB every 250 ms: ~4 KiB/s
        while time.monotonic() - started < 40:
            chunk(filler)
            time.sleep(0.25)
        chunk(b"</testsuite>")
        conn.send(b"0\r\n\r\n")
        status = conn.getresponse().status
        trickle_outcomes.append(f"{status} after {time.monotonic() - started:.0f} s")
    except Exception as e:
        trickle_outcomes.append(f"cut after {time.monotonic() - started:.0f} s ({type(e).__name__})")

threads = [threading.Thread(target=trickle, args=(i,)) for i in range(6)]
for t in threads: t.start()
time.sleep(2)  # the trickles hold whatever slots they can get

statuses, latencies = {}, []
report = b'<testsuite name="q"><testcase classname="c" name="t1"/><testcase classname="c" name="t2"/></testsuite>'
for i in range(reports):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.monotonic()
    conn.request("POST", f"/v1/ingest?run_id=quiet-{i}", body=report,
                 headers={"Authorization": "Bearer " + quiet, "Content-Type": "application/xml"})
    status = conn.getresponse().status
    latencies.append(time.monotonic() - t0)
    statuses[status] = statuses.get(status, 0) + 1
    conn.close()

print(f"quiet tenant, {reports} small JUnit reports beside 6 trickling uploads: "
      + ", ".join(f"{k} x {v}" for k, v in sorted(statuses.items()))
      + f"; latency p50 {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
for t in threads: t.join()
print("trickling uploads: " + "; ".join(sorted(trickle_outcomes)))
PY
