#!/usr/bin/env bash
# Fleet concurrency (#21): durable unique-run ingest at 256 connections against the same binary's /healthz, with
# DEFAULT settings (info logging, access log included) except a per-token ingest budget high enough not to cap
# the load; then the p99 of a paced ingest load at 64 connections offering half of the maximum measured there.
# Rounds are interleaved (healthz, ingest, healthz, ...) and the medians reported, as in bench.sh.
# Usage: load/fleet.sh <binary> [--duration 6s] [--rounds 3] [--log-level information]
set -euo pipefail
BINARY=${1:?usage: fleet.sh <binary> [--duration 6s] [--rounds 3]}
shift
DURATION=6s ROUNDS=3 LOG_LEVEL=information
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --log-level) LOG_LEVEL=$2; shift 2 ;;
    *) echo "fleet.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
# The access log goes to a file, as it would to journald or a collector: its cost is part of the measurement.
start_server "$BINARY" --log-level "$LOG_LEVEL" --rate-ingest 1000000000
export TOKEN
TOKEN=$(new_tenant fleet)
# wrk_row <name> <connections> <script or ""> [path] : appends "name req/s p50 p99 unexpected errors"
wrk_row() {
  local out args=(-t1 "-c$2" "-d$DURATION" --latency)
  [ -n "$3" ] && args+=(-s "$HERE/$3")
  out=$($WRK_PIN wrk "${args[@]}" "$BASE${4:-/}" 2>&1)
  local non2xx; non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  echo "$1 $(awk '/^Requests\/sec:/ {print $2}' <<<"$out") $(awk '$1=="50%" {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out")" \
    "$(awk '/^unexpected_status/ {print $2}' <<<"$out" | grep . || echo "${non2xx:-0}")" \
    "$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' <<<"$out" | grep . || echo 0)" >>"$WORK/rows"
}
median() { awk -v n="$1" '$1==n {print $2}' "$WORK/rows" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
row_of_median() { local m; m=$(median "$1"); awk -v n="$1" -v m="$m" '$1==n && $2==m {print; exit}' "$WORK/rows"; }

: >"$WORK/rows"
$WRK_PIN wrk -t1 -c256 -d3s -s "$HERE/ingest_unique.lua" "$BASE/" >/dev/null 2>&1 # warm-up: first token use, pools
for _ in $(seq "$ROUNDS"); do
  wrk_row healthz_256 256 "" /healthz
  wrk_row ingest_256 256 ingest_unique.lua
  wrk_row ingest_64 64 ingest_unique.lua
done
# Paced: 64 connections offering half of the 64-connection maximum (each waits 64 / (max / 2) s between requests).
MAX64=$(median ingest_64)
DELAY=$(awk -v m="$MAX64" 'BEGIN { printf "%d", (m > 0 ? 64 * 1000 / (m / 2) : 100) }')
for _ in $(seq "$ROUNDS"); do DELAY_MS=$DELAY wrk_row paced_64 64 ingest_unique.lua; done

echo
echo "FastIngest fleet bench: $(nproc) cores, $DURATION x $ROUNDS rounds (median), log level $LOG_LEVEL, durability full"
echo "rounds: healthz_256 $(awk '$1=="healthz_256" {printf "%s ", $2}' "$WORK/rows")| ingest_256 $(awk '$1=="ingest_256" {printf "%s ", $2}' "$WORK/rows")"
printf "%-12s %10s %10s %10s %10s %8s %8s\n" scenario req/s p50 p99 unexpected errors ratio
BASE_RPS=$(median healthz_256)
for name in healthz_256 ingest_256 ingest_64 paced_64; do
  row_of_median "$name" | awk -v b="$BASE_RPS" -v d="$DELAY" '{
    ratio = ($1 ~ /_256$/ && b > 0) ? sprintf("%.2f", $2 / b) : "-"
    printf "%-12s %10.0f %10s %10s %10d %8d %8s\n", $1, $2, $3, $4, $5, $6, ratio }'
done
echo "paced_64 offers about $(awk -v d="$DELAY" 'BEGIN { printf "%d", 64 * 1000 / d }') req/s (half of ingest_64's median), delay ${DELAY} ms per connection"
BAD=$(awk '$1!="healthz_256" && ($5 > 0 || $6 > 0) {print $1}' "$WORK/rows" | sort -u)
if [ -n "$BAD" ]; then echo "fleet: unexpected statuses or socket errors in: $BAD" >&2; exit 1; fi
