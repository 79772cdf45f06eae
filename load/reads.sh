#!/usr/bin/env bash
# Read-path before/after (#22, prepared statements): two binaries measured alternately (A, B, A, B, ...), each on a
# fresh server seeded with the same runs (fastingest seed), serving reads.lua (run list, one run, 7-day stats) at --connections.
# Prints every pass, the median req/s per binary and B/A; with both binaries the same, it shows the noise.
# Usage: load/reads.sh <binary-a> <binary-b> [--pairs 3] [--duration 6s] [--connections 16] [--runs 100000]
set -euo pipefail
A=${1:?usage: reads.sh <binary-a> <binary-b> [--pairs 3] [--duration 6s] [--connections 16] [--runs 100000]}
B=${2:?usage: reads.sh <binary-a> <binary-b> [--pairs 3] [--duration 6s] [--connections 16] [--runs 100000]}
shift 2
PAIRS=3 DURATION=6s CONNECTIONS=16 RUNS=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) PAIRS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "reads.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
SUMMARY=$(mktemp /tmp/fastingest-reads.XXXXXX)
LOAD_DIRS+=("$SUMMARY")

for pair in $(seq "$PAIRS"); do
  for label in a b; do
    binary=$A; [ "$label" = b ] && binary=$B
    # The same history for both: RUNS runs over the last 30 days on two branches (fastingest seed).
    make_work
    "$binary" seed --runs "$RUNS" --days 30 --data "$WORK/data" >"$WORK/seed.txt"
    start_server "$binary" --log-level warning --rate-ingest 1000000000 --rate-read 1000000000
    export TOKEN RUN_ID=seed-$((RUNS - 1))
    TOKEN=$(awk '$1=="read_token" {print $2}' "$WORK/seed.txt")
    [ -n "$TOKEN" ] || { echo "reads: the seed printed no read token:" >&2; cat "$WORK/seed.txt" >&2; exit 1; }
    $WRK_PIN wrk -t1 "-c$CONNECTIONS" -d2s -s "$HERE/reads.lua" "$BASE/" >/dev/null 2>&1 # warm-up
    out=$($WRK_PIN wrk -t1 "-c$CONNECTIONS" "-d$DURATION" --latency -s "$HERE/reads.lua" "$BASE/" 2>&1) || { echo "$out" >&2; exit 1; }
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    bad=$(awk '/^unexpected_status/ {print $2}' <<<"$out")
    echo "$label $pair $rps $p99 $bad" | tee -a "$SUMMARY"
    [ -n "$rps" ] && [ "${bad:-1}" = 0 ] || { echo "reads: pass $label $pair had unexpected statuses or no result:" >&2; echo "$out" >&2; exit 1; }
    stop_server
  done
done
echo "reads: a=$A b=$B, $PAIRS pairs, $CONNECTIONS connections, $DURATION per pass, $RUNS runs seeded"
median() { awk -v l="$1" '$1==l {print $3}' "$SUMMARY" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
MA=$(median a) MB=$(median b)
echo "median req/s: a $MA, b $MB, b/a $(awk -v a="$MA" -v b="$MB" 'BEGIN { printf "%.2f", b / a }')"
