#!/usr/bin/env bash
# Load benchmark: starts the AOT binary on a fresh temp database, runs a bare-endpoint baseline of the same
# binary and each scenario at the same concurrency, and prints one table with ratios to the baseline measured
# in the same run. Loopback only. Usage: load/bench.sh <binary> [--duration 10s] [--connections 64]
#   [--durability full|normal] [--rounds 3] [--tenants 200] [--quick: only the baseline and ingest_unique]
set -euo pipefail
BINARY=${1:?usage: bench.sh <binary> [--duration 10s] [--connections 64]}
shift
DURATION=10s CONNECTIONS=64 DURABILITY=full ROUNDS=3 TENANTS=200 QUICK=
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --durability) DURABILITY=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --tenants) TENANTS=$2; shift 2 ;;
    --quick) QUICK=1; TENANTS=0; shift ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/fastingest-bench.XXXXXX)
PORT=$(( 20000 + RANDOM % 12000 )) # below the ephemeral range (32768+), where a client socket could hold it
BASE="http://127.0.0.1:$PORT"

# Two cores: the server gets core 0, wrk gets core 1, so neither steals the other's CPU.
SERVER_PIN="" WRK_PIN=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then SERVER_PIN="taskset -c 0"; WRK_PIN="taskset -c 1"; fi

# Rate limits stay on (their cost is part of the hot path) with budgets far above what the bench sends.
$SERVER_PIN "$BINARY" --listen "127.0.0.1:$PORT" --data "$WORK/data" --log-level warning --durability "$DURABILITY" \
  --rate-ingest 1000000000 --rate-read 1000000000 --rate-manage 1000000 \
  >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 200); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.05; done
curl -sf "$BASE/healthz" >/dev/null || { echo "bench: the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1; }
ADMIN=$(cat "$WORK/data/admin-token")

json_field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }
new_tenant() { # prints an ingest token for a fresh org/project named $1
  local org project
  org=$(curl -sf -XPOST "$BASE/v1/orgs" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' -d "{\"name\":\"$1\"}" | json_field id)
  project=$(curl -sf -XPOST "$BASE/v1/projects" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' -d "{\"org_id\":\"$org\",\"name\":\"$1\"}" | json_field id)
  curl -sf -XPOST "$BASE/v1/tokens" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' -d "{\"project_id\":\"$project\"}" | json_field token
}
export TOKEN TOKENS_FILE=$WORK/tokens
TOKEN=$(new_tenant bench)
# many_tenants: one org + project + token each (two Argon2 hashes per tenant, two at a time), then one
# request per token so the measured run hits warm caches like a fleet that has been running for a while.
export -f new_tenant json_field; export BASE ADMIN
seq "$TENANTS" | xargs -P 2 -I{} bash -c 'new_tenant tenant-{}' >"$TOKENS_FILE"
xargs -P 2 -I{} curl -sf -o /dev/null -XPOST "$BASE/v1/ingest" -H "Authorization: Bearer {}" -H 'content-type: application/json' \
  -d '{"run_id":"warm","status":"passed","duration_ms":1,"timestamp":"2026-01-12T10:00:00Z"}' <"$TOKENS_FILE"

# run_wrk <name> <script or ""> [path] : appends one row to $WORK/rows
run_wrk() {
  local name=$1 script=$2 out args=(-t1 "-c$CONNECTIONS" "-d$DURATION" --latency)
  [ -n "$script" ] && args+=(-s "$HERE/$script")
  out=$($WRK_PIN wrk "${args[@]}" "$BASE${3:-/}" 2>&1)
  local rps p50 p99 non2xx errors unexpected
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out"); non2xx=${non2xx:-0}
  errors=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' <<<"$out"); errors=${errors:-0}
  unexpected=$(awk '/^unexpected_status/ {print $2}' <<<"$out"); unexpected=${unexpected:-$non2xx}
  echo "$name $rps $p50 $p99 $unexpected $errors" >>"$WORK/rows"
  grep '^note:' <<<"$out" | sed "s/^note:/$name:/" >>"$WORK/notes" || true
  if [ -z "$rps" ]; then echo "$out" >&2; fi
}

: >"$WORK/rows"; : >"$WORK/notes"
# Warm-up: first token use (one Argon2), thread pool growth, page cache.
$WRK_PIN wrk -t1 "-c$CONNECTIONS" -d3s -s "$HERE/ingest_unique.lua" "$BASE/" >/dev/null 2>&1
# Our machines are shared and noisy: every scenario runs once per round, interleaved with the baseline, and
# the table reports each scenario's median round, so a ratio compares numbers taken minutes apart at most.
for round in $(seq "$ROUNDS"); do
  run_wrk baseline_healthz "" /healthz
  run_wrk ingest_unique ingest_unique.lua
  for scenario in "$HERE"/scenarios/*.lua; do
    [ -e "$scenario" ] && [ -z "$QUICK" ] || continue
    run_wrk "$(basename "$scenario" .lua)" "scenarios/$(basename "$scenario")"
  done
done
# Median round per scenario (by req/s); errors are summed over all rounds.
sort -k1,1 -k2,2n "$WORK/rows" | awk -v rounds="$ROUNDS" '
  { n[$1]++; row[$1, n[$1]] = $0; unexpected[$1] += $5; errors[$1] += $6 }
  END { for (s in n) { split(row[s, int((n[s] + 1) / 2)], f, " "); print f[1], f[2], f[3], f[4], unexpected[s], errors[s] } }' \
  | sort -k1,1 >"$WORK/median"

if [ -z "$QUICK" ]; then
# Noisy neighbour: a second server with a small ingest budget (6,000/min = 100/s per token). One tenant
# floods far past it while another ingests steadily under it; the quiet one must see only 201s.
NN_PORT=$((PORT + 1))
$SERVER_PIN "$BINARY" --listen "127.0.0.1:$NN_PORT" --data "$WORK/nn-data" --log-level warning --durability "$DURABILITY" \
  --rate-ingest 6000 --rate-manage 1000000 >"$WORK/nn-server.log" 2>&1 &
NN_SERVER=$!
trap 'kill $SERVER $NN_SERVER 2>/dev/null || true; wait $SERVER $NN_SERVER 2>/dev/null || true' EXIT
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$NN_PORT/healthz" >/dev/null && break; sleep 0.05; done
NOISY=$(BASE="http://127.0.0.1:$NN_PORT" ADMIN=$(cat "$WORK/nn-data/admin-token") bash -c 'new_tenant noisy')
QUIET=$(BASE="http://127.0.0.1:$NN_PORT" ADMIN=$(cat "$WORK/nn-data/admin-token") bash -c 'new_tenant quiet')
TOKEN=$NOISY $WRK_PIN wrk -t1 -c32 "-d$DURATION" -s "$HERE/checks/noisy_tenant.lua" "http://127.0.0.1:$NN_PORT/" >"$WORK/noisy.out" 2>&1 &
NOISY_WRK=$!
sleep 1
out=$(TOKEN=$QUIET DELAY_MS=20 $WRK_PIN wrk -t1 -c1 -d"$DURATION" --latency -s "$HERE/checks/quiet_tenant.lua" "http://127.0.0.1:$NN_PORT/" 2>&1)
wait $NOISY_WRK || true
echo "quiet_tenant_beside_noisy $(awk '/^Requests\/sec:/ {print $2}' <<<"$out") $(awk '$1=="50%" {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out") $(awk '/^unexpected_status/ {print $2}' <<<"$out") 0" >>"$WORK/median"
grep '^note:' "$WORK/noisy.out" | sed 's/^note:/noisy_neighbor:/' >>"$WORK/notes" || true
NOISY_BAD=$(awk '/^unexpected_status/ {print $2}' "$WORK/noisy.out"); [ "${NOISY_BAD:-1}" -eq 0 ] || echo "noisy_tenant $NOISY_BAD unexpected" >>"$WORK/notes"
fi

RSS=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
METRICS=$(curl -sf "$BASE/metrics")
BATCH_SUM=$(awk '/^fastingest_ingest_batch_size_sum/ {print $2}' <<<"$METRICS")
BATCH_COUNT=$(awk '/^fastingest_ingest_batch_size_count/ {print $2}' <<<"$METRICS")

echo
echo "FastIngest bench: $(nproc) cores, $CONNECTIONS connections, $DURATION per scenario x $ROUNDS rounds (median shown), durability=$DURABILITY"
echo "server pinned: ${SERVER_PIN:-no}, wrk pinned: ${WRK_PIN:-no}"
awk -v base="$(awk '$1=="baseline_healthz" {print $2}' "$WORK/median")" '
  BEGIN { printf "%-22s %12s %10s %10s %12s %8s %8s\n", "scenario", "req/s", "p50", "p99", "unexpected", "errors", "ratio" }
  # The quiet tenant is paced (one request every 20 ms on purpose): a ratio to the baseline means nothing there.
  $1 == "quiet_tenant_beside_noisy" { printf "%-22s %12.0f %10s %10s %12d %8d %8s\n", $1, $2, $3, $4, $5, $6, "-"; next }
  { printf "%-22s %12.0f %10s %10s %12d %8d %8.2f\n", $1, $2, $3, $4, $5, $6, (base > 0 ? $2 / base : 0) }' "$WORK/median"
sort -u "$WORK/notes" | tail -n 4
echo "peak RSS: $((RSS / 1024)) MiB; mean batch size: $(awk -v s="$BATCH_SUM" -v c="$BATCH_COUNT" 'BEGIN { printf "%.1f", (c > 0 ? s / c : 0) }')"
FAILED=$(awk '$1!="baseline_healthz" && ($5 > 0 || $6 > 0) {print $1}' "$WORK/median")
if [ -n "$FAILED" ]; then echo "bench: unexpected statuses or socket errors in: $FAILED" >&2; exit 1; fi
# Fleet concurrency with default settings (info logging): 256 connections and the paced 64-connection p99.
if [ -z "$QUICK" ]; then
  kill $SERVER ${NN_SERVER:-} 2>/dev/null || true; wait $SERVER ${NN_SERVER:-} 2>/dev/null || true
  "$HERE/fleet.sh" "$BINARY" --duration "$DURATION" --rounds "$ROUNDS"
fi
