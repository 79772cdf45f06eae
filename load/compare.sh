#!/usr/bin/env bash
# Before/after in one run: two binaries measured alternately (A, B, A, B, ...) with the same scripts, so a change's
# effect is read against numbers taken minutes apart on the same noisy machine. Each pass runs bench.sh --quick
# (healthz and unique-run durable ingest at 64 connections, 3 interleaved rounds) and fleet.sh (256 connections
# at default settings, and the paced 64-connection p99); the summary lists every pass and the median per binary.
# Usage: load/compare.sh <binary-a> <binary-b> [--pairs 2] [--duration 6s]
set -euo pipefail
A=${1:?usage: compare.sh <binary-a> <binary-b> [--pairs 2] [--duration 6s]}
B=${2:?usage: compare.sh <binary-a> <binary-b> [--pairs 2] [--duration 6s]}
shift 2
PAIRS=2 DURATION=6s
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) PAIRS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d /tmp/fastingest-compare.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
: >"$OUT/summary"
for pair in $(seq "$PAIRS"); do
  for label in a b; do
    binary=$A; [ "$label" = b ] && binary=$B
    "$HERE/bench.sh" "$binary" --quick --duration "$DURATION" --rounds 3 >"$OUT/bench-$label-$pair" 2>&1
    "$HERE/fleet.sh" "$binary" --duration "$DURATION" --rounds 3 >"$OUT/fleet-$label-$pair" 2>&1
    # label ingest64 ratio64 ingest256 ratio256 paced_p99
    echo "$label $(awk '$1=="ingest_unique" {print $2, $7}' "$OUT/bench-$label-$pair") $(awk '$1=="ingest_256" {print $2, $7}' "$OUT/fleet-$label-$pair") $(awk '$1=="paced_64" {print $4; exit}' "$OUT/fleet-$label-$pair")" >>"$OUT/summary"
  done
done
echo "compare: a=$A b=$B, $PAIRS pairs, $DURATION per wrk round"
printf "%-4s %12s %8s %12s %8s %10s\n" bin ingest_64 ratio ingest_256 ratio paced_p99
awk '{ printf "%-4s %12.0f %8s %12.0f %8s %10s\n", $1, $2, $3, $4, $5, $6 }' "$OUT/summary"
echo "medians:"
for label in a b; do
  awk -v l="$label" '$1==l' "$OUT/summary" | sort -k2,2n | awk '{ v[NR] = $2 } END { printf "%s ingest_64 %.0f", $1, v[int((NR + 1) / 2)] }'
  awk -v l="$label" '$1==l' "$OUT/summary" | sort -k4,4n | awk '{ v[NR] = $4 } END { printf "  ingest_256 %.0f\n", v[int((NR + 1) / 2)] }'
done
