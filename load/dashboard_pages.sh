#!/usr/bin/env bash
# Dashboard page times on a big project: seeds RUNS runs (fastingest seed), adds REPORTS gzip JUnit reports of
# CASES cases each to the same project (per-test data: flaky tests, failure groups), signs in through the form with
# the seed's read token, then requests every page 30 times, one at a time, and prints p50/p99 and page size.
# Server pinned to one core, client to the other. Loopback only.
# Usage: load/dashboard_pages.sh <binary> [--runs 1000000] [--reports 100] [--cases 2000]
set -euo pipefail
BINARY=${1:?usage: dashboard_pages.sh <binary> [--runs N] [--reports N] [--cases N]}
shift
RUNS=1000000 REPORTS=100 CASES=2000
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --reports) REPORTS=$2; shift 2 ;;
    --cases) CASES=$2; shift 2 ;;
    *) echo "dashboard_pages.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d /tmp/fastingest-pages.XXXXXX)
PORT=$(( 20000 + RANDOM % 12000 )) # below the ephemeral range (32768+), where a client socket could hold it
SERVER_PIN=() CLIENT_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then SERVER_PIN=(taskset -c 0); CLIENT_PIN=(taskset -c 1); fi
"$BINARY" seed --runs "$RUNS" --days 30 --data "$WORK/data" >"$WORK/seed.txt"
cat "$WORK/seed.txt" >&2
"${SERVER_PIN[@]}" "$BINARY" --listen "127.0.0.1:$PORT" --data "$WORK/data" --log-level warning \
  --rate-ingest 100000 --rate-read 100000 >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.05; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1; }

"${CLIENT_PIN[@]}" python3 - "$PORT" "$(cat "$WORK/data/admin-token")" "$WORK/seed.txt" "$REPORTS" "$CASES" <<'PY'
import gzip, http.client, json, random, re, sys, time, urllib.parse
from datetime import datetime, timedelta, timezone

port, admin, seed, reports, cases = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
lines = dict(line.split(" ", 1) for line in open(seed).read().splitlines() if line.startswith(("project_id", "read_token")))
project, read_token = lines["project_id"], lines["read_token"]

def request(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        cookies = "; ".join(v for k, v in r.getheaders() if k.lower() == "set-cookie")
        return r.status, {"Set-Cookie": cookies}, r.read()
    finally:
        conn.close()

status, _, body = request("POST", "/v1/tokens", json.dumps({"project_id": project, "scope": "ingest"}).encode(),
                          {"Authorization": "Bearer " + admin, "Content-Type": "application/json"})
ingest = json.loads(body)["token"]
random.seed(1)
now = datetime.now(timezone.utc)
for r in range(reports):
    parts = ['<testsuite name="pages">']
    for i in range(cases):
        failed = random.random() < (0.3 if i % 40 == 0 else 0.001)
        parts.append(f'<testcase classname="com.acme.C{i % 50}" name="test_{i}" time="{random.random() * 0.2:.3f}">'
                     + (f'<failure message="expected {random.randint(1, 9)} got {random.randint(10, 99)}"/>' if failed else "") + "</testcase>")
    parts.append("</testsuite>")
    ts = (now - timedelta(days=6) + timedelta(days=6) * r / reports).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, _, body = request("POST", f"/v1/ingest?run_id=pages-{r}&commit_sha={r // 2:07x}&timestamp={ts}", gzip.compress("".join(parts).encode()),
                              {"Authorization": "Bearer " + ingest, "Content-Type": "application/xml", "Content-Encoding": "gzip"})
    assert status == 201, (status, body[:200])

time.sleep(2)  # the background fold (once a second) catches up: pages are measured in their steady state

# Sign in through the form, as a browser does.
status, headers, page = request("GET", "/ui")
login_cookie = re.search(r"fastingest_signin=([^;]+)", headers["Set-Cookie"]).group(1)
af = re.search(rb'name="af" value="([^"]+)"', page).group(1).decode()
status, headers, _ = request("POST", "/ui/sign-in", urllib.parse.urlencode({"af": af, "token": read_token}).encode(),
                             {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "fastingest_signin=" + login_cookie})
assert status == 303, status
session = re.search(r"fastingest_session=([^;]+)", headers["Set-Cookie"]).group(1)
cookie = {"Cookie": "fastingest_session=" + session}

status, _, tests_page = request("GET", f"/ui/projects/{project}/tests?state=flaky", headers=cookie)
test_link = re.search(rb'href="(/ui/projects/[^"]+/tests/tst_[0-9]+)"', tests_page)
pages = [
    ("Overview", f"/ui/projects/{project}"),
    ("Runs (first page)", f"/ui/projects/{project}/runs"),
    ("Runs, failed on a branch", f"/ui/projects/{project}/runs?status=failed&branch=main"),
    ("A run with 2,000 tests", f"/ui/projects/{project}/runs/pages-{reports - 1}"),
    ("Tests: flaky (7 days)", f"/ui/projects/{project}/tests?state=flaky"),
    ("Tests: broken (30 days)", f"/ui/projects/{project}/tests?state=broken&window=30d"),
    ("A test", test_link.group(1).decode() if test_link else f"/ui/projects/{project}"),
    ("Failure groups", f"/ui/projects/{project}/failures"),
]
print(f"| Page ({sys.argv[3] and 'seeded runs'} + {reports} JUnit runs x {cases} cases) | p50 ms | p99 ms | size KB |")
print("|---|---|---|---|")
for label, path in pages:
    times = []
    for _ in range(30):
        t = time.monotonic()
        status, _, body = request("GET", path, headers=cookie)
        times.append((time.monotonic() - t) * 1000)
        assert status == 200, (path, status)
    times.sort()
    print(f"| {label} | {times[len(times) // 2]:.1f} | {times[min(len(times) - 1, int(len(times) * 0.99))]:.1f} | {len(body) / 1024:.0f} |", flush=True)
PY
