#!/usr/bin/env bash
# Per-test results at volume: starts the AOT binary on a fresh database, uploads RUNS JUnit reports of CASES
# test cases each (two runs per commit; every 50th test fails a fifth of the time, any other one in 2,000), then
# times the per-test reads over that history. Prints upload throughput and read latencies (median and max of 20).
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
PORT=$(( 20000 + RANDOM % 20000 ))
BASE="http://127.0.0.1:$PORT"
PIN=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then PIN="taskset -c 0"; fi
$PIN "$BINARY" --listen "127.0.0.1:$PORT" --data "$WORK/data" --log-level warning >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 200); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.05; done
ADMIN=$(cat "$WORK/data/admin-token")
json_field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }
post() { curl -sf -XPOST "$BASE$1" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' -d "$2"; }
ORG=$(post /v1/orgs '{"name":"history"}' | json_field id)
PROJECT=$(post /v1/projects "{\"org_id\":\"$ORG\",\"name\":\"history\"}" | json_field id)
TOKEN=$(post /v1/tokens "{\"project_id\":\"$PROJECT\",\"scope\":\"ingest\"}" | json_field token)

report() { # report <seed>: a Surefire-shaped report with $CASES cases
  awk -v n="$CASES" -v seed="$1" 'BEGIN {
    srand(seed); print "<testsuite name=\"history\">"
    for (i = 0; i < n; i++) {
      printf "<testcase classname=\"com.acme.Class%d\" name=\"test_%d\" time=\"%.3f\">", i % 100, i, rand() * (i % 7 == 0 ? 2 : 0.05)
      if (rand() < (i % 50 == 0 ? 0.2 : 0.0005)) printf "<failure message=\"assertion failed in test_%d\">stack</failure>", i
      print "<system-out>some output</system-out></testcase>"
    }
    print "</testsuite>" }'
}

mkdir -p "$WORK/reports"
for r in $(seq "$RUNS"); do report "$r" | gzip -c >"$WORK/reports/$r.xml.gz"; done
NOW=$(date -u +%s)
start=$(date +%s.%N)
for r in $(seq "$RUNS"); do
  ts=$(date -u -d "@$(( NOW - (RUNS - r) * 60 ))" +%Y-%m-%dT%H:%M:%SZ)
  sha=$(printf '%07x' $(( 0x1000000 + r / 2 )))
  code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$BASE/v1/ingest?run_id=run-$r&commit_sha=$sha&timestamp=$ts" \
    -H "Authorization: Bearer $TOKEN" -H 'content-type: application/xml' -H 'content-encoding: gzip' \
    --data-binary @"$WORK/reports/$r.xml.gz")
  [ "$code" = 201 ] || { echo "upload $r answered $code" >&2; exit 1; }
done
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v r="$RUNS" -v c="$CASES" 'BEGIN {
  printf "uploaded %d runs x %d cases = %d test cases in %.1f s: %.0f test cases/s (sequential, gzip, one client)\n", r, c, r * c, e - s, r * c / (e - s) }'

time_get() { # time_get <label> <path>: median and max of 20 sequential requests
  local times=()
  for _ in $(seq 20); do
    times+=("$(curl -sf -o /dev/null -w '%{time_total}' "$BASE$2" -H "Authorization: Bearer $TOKEN")")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v label="$1" '{ t[NR] = $1 } END { printf "%-36s p50 %7.1f ms   max %7.1f ms\n", label, t[int((NR + 1) / 2)] * 1000, t[NR] * 1000 }'
}
time_get "GET /v1/runs/{id}/tests (first page)" "/v1/runs/run-$RUNS/tests?limit=100"
time_get "GET /v1/runs/{id}/tests?status=failed" "/v1/runs/run-$RUNS/tests?status=failed"
time_get "GET /v1/tests/flaky?window=7d" "/v1/tests/flaky?window=7d"
time_get "GET /v1/tests/slowest?window=7d" "/v1/tests/slowest?window=7d"
echo "flaky tests found: $(curl -sf "$BASE/v1/tests/flaky?window=7d&limit=1000" -H "Authorization: Bearer $TOKEN" | grep -o '"flips"' | wc -l)"
echo "database: $(du -h "$WORK/data/fastingest.db" | cut -f1)"
