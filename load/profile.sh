#!/usr/bin/env bash
# Where a request's CPU goes (#21): perf samples the server (pinned to core 0) during a 256-connection load of
# /healthz and of unique-run durable ingest, and prints the server's CPU per request (µs) by family (kernel, SQLite,
# Kestrel, async machinery, our code, ...) for both and the difference: what ingest costs beyond a bare request.
# Needs a binary with symbols: dotnet publish src/FastIngest/FastIngest.csproj -c Release -r linux-x64 \
#   -o /tmp/fastingest-symbols -p:StripSymbols=false   (then: load/profile.sh /tmp/fastingest-symbols/fastingest)
# Sampling at 4 kHz slows the server by about a fifth: read the figures against each other, not as throughput.
# Usage: load/profile.sh <binary> [--seconds 10] [--keep DIR]   (--keep leaves perf-*.data there for perf report)
set -euo pipefail
BINARY=${1:?usage: profile.sh <binary-with-symbols> [--seconds 10] [--keep DIR]}
shift
SECONDS_SAMPLED=10 KEEP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_SAMPLED=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    *) echo "profile.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v perf >/dev/null || { echo "profile.sh: needs perf (Debian: linux-perf)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
make_work # the next server's data directory; OUT defaults to it
OUT=${KEEP:-$WORK}
mkdir -p "$OUT"

# profile <name> <script or ""> <path>: samples the server while wrk runs; writes OUT/perf-<name>.data and .requests
profile() {
  local args=(-t1 -c256 "-d$((SECONDS_SAMPLED + 4))s")
  [ -n "$2" ] && args+=(-s "$HERE/$2")
  $WRK_PIN wrk "${args[@]}" "$BASE$3" >"$OUT/wrk-$1.txt" 2>&1 &
  local wrk_pid=$!
  sleep 2
  perf record -F 4000 -g -p "$SERVER" -o "$OUT/perf-$1.data" -- sleep "$SECONDS_SAMPLED" >/dev/null 2>&1
  wait "$wrk_pid"
  # Requests during the sampled seconds: the run's rate times the sampled time.
  awk -v s="$SECONDS_SAMPLED" '/^Requests\/sec:/ {printf "%d\n", $2 * s}' "$OUT/wrk-$1.txt" >"$OUT/perf-$1.requests"
}

# families <name>: "family<TAB>µs per request" from the samples' own symbols (self time)
families() {
  perf report -i "$OUT/perf-$1.data" --no-children --sort dso,sym -g none -n -t $'\t' 2>/dev/null | grep -v '^#' | grep -v '^$' |
    awk -F'\t' -v n="$(cat "$OUT/perf-$1.requests")" -v hz=4000 '{
      gsub(/ /, "", $2); d = $3; gsub(/ /, "", d); s = $4; sub(/^\[.\] /, "", s)
      if (d ~ /kernel/) f = "kernel (network, scheduling, file I/O)"
      else if (d ~ /libc/) f = "libc"
      else if (s ~ /^sqlite3|^0x0000/) f = "SQLite (and unresolved)"
      else if (s ~ /SafeHandle|SQLitePCLRaw|Microsoft_Data_Sqlite/) f = "SQLite bindings"
      else if (s ~ /^WKS::|GCHeap|gc_heap|Rhp(New|Alloc|AssignRef|ByRef|Checked)|RhBulk/) f = "GC, allocation, write barriers"
      else if (s ~ /Kestrel/) f = "Kestrel"
      else if (s ~ /^fastingest_/) f = "FastIngest"
      else if (s ~ /^S_P_CoreLib_System_Threading|RunContinuations|AsyncTaskMethodBuilder|AsyncStateMachineBox|RhpInterfaceDispatch|GVMLookup|TypeCast/) f = "async, thread pool, dispatch"
      else if (s ~ /System_Net_Sockets|SystemNative|Pipelines/) f = "sockets, pipelines"
      else if (s ~ /^Prometheus/) f = "prometheus-net"
      else if (s ~ /Logging|System_Text_Json|Microsoft_Extensions/) f = "logging, JSON, extensions"
      else if (s ~ /^S_P_CoreLib/) f = "CoreLib (other)"
      else if (s ~ /^Microsoft_AspNetCore|^System_Diagnostics/) f = "ASP.NET Core, diagnostics (other)"
      else f = "other"
      us[f] += $2 * 1e6 / hz / n
    } END { for (f in us) printf "%s\t%.2f\n", f, us[f] }' | sort
}

start_server "$BINARY" --rate-ingest 1000000000
export TOKEN
TOKEN=$(new_tenant profile)
$WRK_PIN wrk -t1 -c256 -d3s -s "$HERE/ingest_unique.lua" "$BASE/" >/dev/null 2>&1 # warm-up
profile healthz "" /healthz
profile ingest ingest_unique.lua /
families healthz >"$OUT/healthz.tsv"
families ingest >"$OUT/ingest.tsv"

echo "server CPU per request (µs, perf self time at 4 kHz), 256 connections, server on one core"
echo "healthz: $(cat "$OUT/perf-healthz.requests") requests sampled, ingest: $(cat "$OUT/perf-ingest.requests")"
printf "%-40s %8s %8s %8s\n" family ingest healthz beyond
join -t $'\t' -a1 -a2 -e 0 -o 0,1.2,2.2 "$OUT/ingest.tsv" "$OUT/healthz.tsv" >"$OUT/joined.tsv"
awk -F'\t' '{ printf "%.2f\t%-40s %8.2f %8.2f %8.2f\n", $2 - $3, $1, $2, $3, $2 - $3 }' "$OUT/joined.tsv" | sort -rn | cut -f2
awk -F'\t' '{ i += $2; h += $3 } END { printf "%-40s %8.2f %8.2f %8.2f   (healthz/ingest %.2fx)\n", "total", i, h, i - h, h / i }' "$OUT/joined.tsv"
[ -n "$KEEP" ] && echo "perf data kept in $KEEP (perf report -i $KEEP/perf-ingest.data)"
exit 0
