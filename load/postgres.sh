#!/usr/bin/env bash
# Durable ingest on PostgreSQL with one node and with two, beside the embedded SQLite default, in one run (#20).
# Starts a throwaway PostgreSQL cluster (initdb into a temp directory, Unix socket only, fsync and synchronous_commit
# on: a 201 is on disk), then measures unique-run ingest at C connections, rounds interleaved:
#   sqlite  one node on its SQLite file (--durability full)
#   pg1     one node on PostgreSQL
#   pg2     two nodes on the same database, each taking half the connections (two wrk processes, summed), as
#           behind a load balancer, all posting to one project
#   pg2p    the same two nodes, each node's half posting to a project of its own (no shared roll-up rows)
# and the same with 10 test cases per run (sqlite_tc, pg1_tc, pg2_tc). Prints the median req/s and p99 per
# setting and the ratio to SQLite. Everything shares this machine's cores: PostgreSQL, the nodes and wrk.
# Usage: load/postgres.sh <binary> [--duration 6s] [--rounds 3] [--connections 64]
set -euo pipefail
BINARY=${1:?usage: postgres.sh <binary> [--duration 6s] [--rounds 3] [--connections 64]}
shift
DURATION=6s ROUNDS=3 CONNECTIONS=64
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    *) echo "postgres.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/fastingest-pg.XXXXXX)
chmod 755 "$WORK"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PG_BIN/initdb" ] || { echo "postgres.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PG_PORT=$(( 20000 + RANDOM % 12000 ))
mkdir -p "$WORK/pg"
[ "$(id -u)" = 0 ] && chown postgres "$WORK/pg"
as_postgres "$PG_BIN/initdb" -D "$WORK/pg/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w \
  -o "-p $PG_PORT -k $WORK/pg -c listen_addresses='' -c max_connections=200" start >/dev/null
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
pg_url() { echo "Host=$WORK/pg;Port=$PG_PORT;Username=postgres;Database=$1"; }
psql_admin() { as_postgres "$PG_BIN/psql" -h "$WORK/pg" -p "$PG_PORT" -U postgres -d postgres -qAt -c "$1"; }

field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }
# start_node <name> <port> [--postgres <db>]: a node with its own data directory (admin token, spool)
start_node() {
  local name=$1 port=$2; shift 2
  "$BINARY" --listen "127.0.0.1:$port" --data "$WORK/$name" --log-level warning --rate-ingest 1000000000 --rate-read 1000000000 "$@" \
    >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.05; done
  echo "postgres.sh: node $name did not start:" >&2; cat "$WORK/$name.log" >&2; exit 1
}
# ingest_token <port> <admin>: an org, a project and an ingest token on that node
ingest_token() {
  local base="http://127.0.0.1:$1" org project
  org=$(curl -sf -XPOST "$base/v1/orgs" -H "Authorization: Bearer $2" -H 'content-type: application/json' -d "{\"name\":\"bench-$RANDOM$RANDOM\"}" | field id)
  project=$(curl -sf -XPOST "$base/v1/projects" -H "Authorization: Bearer $2" -H 'content-type: application/json' -d "{\"org_id\":\"$org\",\"name\":\"bench\"}" | field id)
  curl -sf -XPOST "$base/v1/tokens" -H "Authorization: Bearer $2" -H 'content-type: application/json' -d "{\"project_id\":\"$project\"}" | field token
}

ADMIN=$("$BINARY" new-admin-token)
export FASTINGEST_ADMIN_TOKEN=$ADMIN
P_SQLITE=$(( PG_PORT + 1 )) P_PG1=$(( PG_PORT + 2 )) P_PG2A=$(( PG_PORT + 3 )) P_PG2B=$(( PG_PORT + 4 ))
psql_admin "CREATE DATABASE one;"
psql_admin "CREATE DATABASE two;"
start_node sqlite "$P_SQLITE"
start_node pg1 "$P_PG1" --postgres "$(pg_url one)"
start_node pg2a "$P_PG2A" --postgres "$(pg_url two)"
start_node pg2b "$P_PG2B" --postgres "$(pg_url two)"
T_SQLITE=$(ingest_token "$P_SQLITE" "$ADMIN")
T_PG1=$(ingest_token "$P_PG1" "$ADMIN")
T_PG2=$(ingest_token "$P_PG2A" "$ADMIN") # one tenant; its token works on both nodes
T_PG2B=$(ingest_token "$P_PG2B" "$ADMIN") # a second project, for pg2p

# wrk_on <port> <connections> <token> <tests per run>: prints "req/s p99_ms errors"
wrk_on() {
  local out
  out=$(TOKEN=$3 TESTS=$4 RUN_PREFIX="p$1-" wrk -t1 "-c$2" "-d$DURATION" --latency -s "$HERE/ingest_unique.lua" "http://127.0.0.1:$1/" 2>&1)
  echo "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out" | sed -E 's/([0-9.]+)us/\1 0.001/; s/([0-9.]+)ms/\1 1/; s/([0-9.]+)s$/\1 1000/' | awk '{printf "%.2f", $1 * $2}')" \
    "$(( $(awk '/^unexpected_status/ {print $2}' <<<"$out" | grep . || echo 0) + $(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' <<<"$out" | grep . || echo 0) ))"
}
: >"$WORK/rows"
row() { echo "$1 $2" >>"$WORK/rows"; }
measure() { # measure <suffix> <tests per run>
  row "sqlite$1" "$(wrk_on "$P_SQLITE" "$CONNECTIONS" "$T_SQLITE" "$2")"
  row "pg1$1" "$(wrk_on "$P_PG1" "$CONNECTIONS" "$T_PG1" "$2")"
  two_nodes "pg2$1" "$T_PG2" "$T_PG2" "$2"
  two_nodes "pg2p$1" "$T_PG2" "$T_PG2B" "$2"
}
two_nodes() { # two_nodes <row> <token for node A> <token for node B> <tests per run>
  local half=$(( CONNECTIONS / 2 )) wa wb a_rps a_p99 a_err b_rps b_p99 b_err
  wrk_on "$P_PG2A" "$half" "$2" "$4" >"$WORK/a" & wa=$!
  wrk_on "$P_PG2B" "$half" "$3" "$4" >"$WORK/b" & wb=$!
  wait $wa $wb
  read -r a_rps a_p99 a_err <"$WORK/a"; read -r b_rps b_p99 b_err <"$WORK/b"
  row "$1" "$(awk -v a="$a_rps" -v b="$b_rps" -v pa="$a_p99" -v pb="$b_p99" -v ea="$a_err" -v eb="$b_err" \
    'BEGIN { printf "%.2f %.2f %d", a + b, (pa > pb ? pa : pb), ea + eb }')"
}
for warm in "$P_SQLITE:$T_SQLITE" "$P_PG1:$T_PG1" "$P_PG2A:$T_PG2" "$P_PG2B:$T_PG2B"; do # warm-up: first token use, pools
  TOKEN=${warm#*:} RUN_PREFIX="w${warm%%:*}-" wrk -t1 -c16 -d2s -s "$HERE/ingest_unique.lua" "http://127.0.0.1:${warm%%:*}/" >/dev/null
done
for _ in $(seq "$ROUNDS"); do
  measure "" 0
  measure "_tc" 10
done

median() { awk -v n="$1" -v c="$2" '$1==n {print $c}' "$WORK/rows" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo
echo "FastIngest on PostgreSQL: $(nproc) cores shared by PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), the nodes and wrk;" \
  "$CONNECTIONS connections, $DURATION x $ROUNDS rounds (median), unique runs, durable (fsync on)"
printf "%-10s %10s %10s %8s %8s\n" setting req/s p99_ms errors vs_sqlite
for suffix in "" _tc; do
  base=$(median "sqlite$suffix" 2)
  for name in sqlite pg1 pg2 pg2p; do
    rps=$(median "$name$suffix" 2)
    printf "%-10s %10.0f %10s %8s %8.2f\n" "$name$suffix" "$rps" "$(median "$name$suffix" 3)" \
      "$(awk -v n="$name$suffix" '$1==n {s+=$4} END {print s+0}' "$WORK/rows")" "$(awk -v r="$rps" -v b="$base" 'BEGIN { print (b > 0 ? r / b : 0) }')"
  done
done
echo "rounds:"; sed 's/^/  /' "$WORK/rows"
echo "runs stored: sqlite via API; PostgreSQL one=$(psql_admin 'SELECT 1' >/dev/null; as_postgres "$PG_BIN/psql" -h "$WORK/pg" -p "$PG_PORT" -U postgres -d one -qAt -c 'SELECT count(*) FROM test_runs;') two=$(as_postgres "$PG_BIN/psql" -h "$WORK/pg" -p "$PG_PORT" -U postgres -d two -qAt -c 'SELECT count(*) FROM test_runs;')"
BAD=$(awk '$4 > 0 {print $1}' "$WORK/rows" | sort -u)
if [ -n "$BAD" ]; then
  echo "postgres.sh: unexpected statuses or socket errors in: $BAD; the nodes' warnings and errors:" >&2
  grep -hE '"level":"(warn|warning|error|fail|crit|critical)"' "$WORK"/*.log | cut -c1-400 | sort | uniq -c | sort -rn | head -20 >&2
  exit 1
fi
