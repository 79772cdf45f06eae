#!/usr/bin/env bash
# Per-test data at volume. Starts the AOT binary on a fresh database (pinned to one core), uploads RUNS gzip
# JUnit reports of CASES cases each from 4 concurrent clients (two runs per commit; every 50th test fails a fifth
# of the time, any other one in 2,000; runs spread over the last 6 days), and prints:
#   - ingest rate beside a reference in the same run: Python's sqlite3 inserting the same rows into a plain
#     WAL table (executemany, one transaction per report), and the ratio;
#   - bytes per stored execution (database plus WAL);
#   - p50/p99 of every per-test read over that history (50 requests each, one at a time).
# Usage: load/test_history.sh <binary> [--runs 200] [--cases 5000]
set -euo pipefail
BINARY=${1:?usage: test_history.sh <binary> [--runs 200] [--cases 5000]}
shift
RUNS=200 CASES=5000
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --cases) CASES=$2; shift 2 ;;
    *) echo "test_history.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d /tmp/fastingest-history.XXXXXX)
PORT=$(( 20000 + RANDOM % 12000 )) # below the ephemeral range (32768+), where a client socket could hold it
SERVER_PIN=() CLIENT_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then SERVER_PIN=(taskset -c 0); CLIENT_PIN=(taskset -c 1); fi
"${SERVER_PIN[@]}" "$BINARY" --listen "127.0.0.1:$PORT" --data "$WORK/data" --log-level warning \
  --rate-ingest 100000 --rate-read 100000 >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"' EXIT
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.05; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1; }

"${CLIENT_PIN[@]}" python3 - "$PORT" "$(cat "$WORK/data/admin-token")" "$RUNS" "$CASES" "$WORK" <<'PY'
import gzip, http.client, json, os, random, sqlite3, statistics, sys, threading, time
from datetime import datetime, timedelta, timezone

port, admin, runs, cases, work = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
random.seed(42)

def call(method, path, token, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        h = {"Authorization": "Bearer " + token}
        h.update(headers or {})
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()

org = json.loads(call("POST", "/v1/orgs", admin, {"name": "history"})[1])["id"]
project = json.loads(call("POST", "/v1/projects", admin, {"org_id": org, "name": "history"})[1])["id"]
token = json.loads(call("POST", "/v1/tokens", admin, {"project_id": project, "scope": "ingest"})[1])["token"]

# A pool of distinct reports, reused round-robin (each run still gets its own id, commit and time).
POOL = min(runs, 40)
reports, rows = [], []
for seed in range(POOL):
    rnd = random.Random(seed)
    parts, report_rows = ['<testsuite name="history">'], []
    for i in range(cases):
        duration = rnd.random() * (2 if i % 7 == 0 else 0.05)
        failed = rnd.random() < (0.2 if i % 50 == 0 else 0.0005)
        message = f"assertion failed in test_{i}: expected {rnd.randint(0, 9)} but was {rnd.randint(10, 99)}" if failed else None
        parts.append(f'<testcase classname="com.acme.Class{i % 100}" name="test_{i}" time="{duration:.3f}">'
                     + (f'<failure message="{message}">stack</failure>' if failed else "")
                     + "<system-out>some output</system-out></testcase>")
        report_rows.append((f"com.acme.Class{i % 100}", f"test_{i}", "failed" if failed else "passed", int(duration * 1000), 1, message))
    parts.append("</testsuite>")
    reports.append(gzip.compress("".join(parts).encode(), 6))
    rows.append(report_rows)

now = datetime.now(timezone.utc)
span = timedelta(days=6)
def stamp(r):
    return (now - span + span * r / runs).strftime("%Y-%m-%dT%H:%M:%SZ")

# Ingest: 4 clients, each takes the next run.
next_run, lock, errors = [0], threading.Lock(), []
def uploader():
    while True:
        with lock:
            r = next_run[0]; next_run[0] += 1
        if r >= runs:
            return
        status, text = call("POST", f"/v1/ingest?run_id=run-{r}&commit_sha={0x1000000 + r // 2:07x}&timestamp={stamp(r)}", token,
                            reports[r % POOL], {"Content-Type": "application/xml", "Content-Encoding": "gzip"})
        if status != 201:
            errors.append((r, status, text[:200]))
t0 = time.monotonic()
threads = [threading.Thread(target=uploader) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
ingest_s = time.monotonic() - t0
if errors:
    sys.exit(f"uploads failed: {errors[:3]}")
server_rate = runs * cases / ingest_s

# The reference: the same rows into a plain table, one transaction per report.
reference_db = os.path.join(work, "reference.db")
db = sqlite3.connect(reference_db, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE cases (run INTEGER, suite TEXT, name TEXT, status TEXT, duration_ms INTEGER, attempt INTEGER, message TEXT)")
t0 = time.monotonic()
for r in range(runs):
    db.execute("BEGIN")
    db.executemany("INSERT INTO cases VALUES (?, ?, ?, ?, ?, ?, ?)", ((r,) + row for row in rows[r % POOL]))
    db.execute("COMMIT")
reference_s = time.monotonic() - t0
reference_rate = runs * cases / reference_s
db.close()

# Fold everything once (a read does), then measure.
call("GET", f"/v1/tests?window=7d&limit=1", token)
data = os.path.join(work, "data")
stored = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data) if f.startswith("fastingest.db"))

def timed(path, n=50):
    times = []
    for _ in range(n):
        t = time.monotonic()
        status, body = call("GET", path, token)
        times.append((time.monotonic() - t) * 1000)
        if status != 200:
            sys.exit(f"GET {path} answered {status}: {body[:200]}")
    times.sort()
    return body, times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]

flaky_body, *_ = timed("/v1/tests?state=flaky&window=7d&limit=1000", 1)
flaky = json.loads(flaky_body)["tests"]
some_test = flaky[0]["test_id"] if flaky else json.loads(call("GET", "/v1/tests?limit=1", token)[1])["tests"][0]["test_id"]
print(f"| Measure ({runs} runs x {cases} cases = {runs * cases:,} executions) | Result |")
print("|---|---|")
print(f"| Ingest, gzip, 4 clients (server on one core) | {server_rate:,.0f} executions/s ({ingest_s:.1f} s) |")
print(f"| Reference: Python sqlite3, same rows, plain WAL table | {reference_rate:,.0f} rows/s |")
print(f"| Ratio server / reference | **{server_rate / reference_rate:.2f}x** |")
print(f"| Stored bytes per execution, server running (database + WAL) | {stored / (runs * cases):.1f} ({stored / 1e6:.0f} MB) |")
open(os.path.join(work, "executions"), "w").write(str(runs * cases))
print(f"| Flaky tests found (7d) | {len(flaky)} |")
for label, path in [
    ("GET /v1/tests?state=flaky&window=7d", "/v1/tests?state=flaky&window=7d"),
    ("GET /v1/tests?state=broken&window=7d", "/v1/tests?state=broken&window=7d"),
    ("GET /v1/tests?window=7d (all, first page)", "/v1/tests?window=7d"),
    ("GET /v1/tests/flaky?window=7d", "/v1/tests/flaky?window=7d"),
    ("GET /v1/tests/slowest?window=7d", "/v1/tests/slowest?window=7d"),
    ("GET /v1/failures?window=7d", "/v1/failures?window=7d"),
    ("GET /v1/tests/{id}?window=7d", f"/v1/tests/{some_test}?window=7d"),
    ("GET /v1/tests/{id}/executions", f"/v1/tests/{some_test}/executions?limit=100"),
    ("GET /v1/runs/{id}/tests (first page)", f"/v1/runs/run-{runs - 1}/tests?limit=100"),
]:
    _, p50, p99 = timed(path)
    print(f"| {label} | p50 {p50:.1f} ms, p99 {p99:.1f} ms |", flush=True)
PY

# Stopped cleanly the server checkpoints and removes its WAL: what the data costs at rest.
kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true
AT_REST=$(cat "$WORK"/data/fastingest.db* | wc -c)
awk -v b="$AT_REST" -v n="$(cat "$WORK/executions")" 'BEGIN { printf "| Stored bytes per execution, at rest (after a clean stop) | **%.1f** (%.0f MB) |\n", b / n, b / 1e6 }'
