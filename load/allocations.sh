#!/usr/bin/env bash
# What a request costs the GC (#21): the server's managed allocations per request, read from its own
# fastingest_gc_allocated_bytes_total before and after a wrk round, for /healthz (what Kestrel and the middleware
# allocate for any request) and for durable unique-run ingest of a small JSON run, over at least --requests each.
# The difference is what ingest allocates beyond a bare request. Rounds alternate; medians are printed.
# Usage: load/allocations.sh <binary> [--requests 100000] [--rounds 3] [--connections 64]
set -euo pipefail
BINARY=${1:?usage: allocations.sh <binary> [--requests 100000] [--rounds 3] [--connections 64]}
shift
REQUESTS=100000 ROUNDS=3 CONNECTIONS=64
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) REQUESTS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    *) echo "allocations.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
# Default settings (the access log summarised, info level), a budget that does not cap the load.
start_server "$BINARY" --rate-ingest 1000000000
export TOKEN
TOKEN=$(new_tenant alloc)

allocated() { curl -sf "$BASE/metrics" | awk '$1=="fastingest_gc_allocated_bytes_total" {printf "%.0f", $2}'; }
# round <name> <script or ""> <path>: runs wrk long enough for REQUESTS at the last measured rate; prints bytes/request
declare -A RATE=([healthz]=40000 [ingest]=20000)
round() {
  local seconds before after out requests
  seconds=$(( REQUESTS / ${RATE[$1]} + 2 ))
  before=$(allocated)
  local args=(-t1 "-c$CONNECTIONS" "-d${seconds}s")
  [ -n "$2" ] && args+=(-s "$HERE/$2")
  out=$($WRK_PIN wrk "${args[@]}" "$BASE$3" 2>&1)
  after=$(allocated)
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  RATE[$1]=$(awk '/^Requests\/sec:/ {printf "%d", $2}' <<<"$out")
  [ "$requests" -ge "$REQUESTS" ] || echo "allocations: only $requests $1 requests in $seconds s" >&2
  echo "$1 $requests $(( after - before )) $(awk -v b=$(( after - before )) -v r="$requests" 'BEGIN { printf "%.0f", b / r }')" >>"$WORK/rows"
}
: >"$WORK/rows"
$WRK_PIN wrk -t1 -c"$CONNECTIONS" -d3s -s "$HERE/ingest_unique.lua" "$BASE/" >/dev/null 2>&1 # warm-up: JIT-free, but pools and caches
for _ in $(seq "$ROUNDS"); do
  round healthz "" /healthz
  round ingest ingest_unique.lua /
done
median() { awk -v n="$1" '$1==n {print $4}' "$WORK/rows" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo
echo "FastIngest allocations per request: $CONNECTIONS connections, at least $REQUESTS requests per round, $ROUNDS rounds (median)"
printf "%-8s %12s %16s %14s\n" route requests allocated bytes/request
awk '{ printf "%-8s %12d %16d %14d\n", $1, $2, $3, $4 }' "$WORK/rows"
H=$(median healthz) I=$(median ingest)
echo "median bytes/request: healthz $H, ingest $I; ingest beyond a bare request: $(( I - H ))"
