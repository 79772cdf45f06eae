# Shared by the load scripts: start a server and make tenants. Source it; it sets WORK, PORT, BASE, SERVER_PIN,
# WRK_PIN and stops the server (and removes WORK) on exit.
# make_work: a fresh WORK directory (its data/ is the next server's database), removed on exit.
# start_server <binary> [server args...]: starts the binary on WORK/data (a fresh WORK unless make_work ran since
# the last start) and waits for /healthz.
# new_tenant <name>: prints an ingest token for a fresh org and project named <name>.

# Two cores: the server gets core 0, wrk gets core 1, so neither steals the other's CPU.
SERVER_PIN="" WRK_PIN=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then SERVER_PIN="taskset -c 0"; WRK_PIN="taskset -c 1"; fi
SERVER=""

stop_server() {
  [ -n "$SERVER" ] || return 0
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}

make_work() {
  WORK=$(mktemp -d /tmp/fastingest-load.XXXXXX)
  LOAD_DIRS+=("$WORK")
  FRESH_WORK=1
}

start_server() {
  local binary=$1
  shift
  stop_server
  [ -n "${FRESH_WORK:-}" ] || make_work
  FRESH_WORK=""
  PORT=$(( 20000 + RANDOM % 12000 )) # below the ephemeral range (32768+), where a client socket could hold it
  BASE="http://127.0.0.1:$PORT"
  $SERVER_PIN "$binary" --listen "127.0.0.1:$PORT" --data "$WORK/data" "$@" >"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 200); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.05; done
  # Answered, and by this server (not another process that already held the port).
  if ! curl -sf "$BASE/healthz" >/dev/null || ! kill -0 "$SERVER" 2>/dev/null; then
    echo "the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1
  fi
  ADMIN=${FASTINGEST_ADMIN_TOKEN:-$(cat "$WORK/data/admin-token")}
}

json_field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }

new_tenant() {
  local org project
  org=$(curl -sf -XPOST "$BASE/v1/orgs" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' -d "{\"name\":\"$1\"}" | json_field id)
  project=$(curl -sf -XPOST "$BASE/v1/projects" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' -d "{\"org_id\":\"$org\",\"name\":\"$1\"}" | json_field id)
  curl -sf -XPOST "$BASE/v1/tokens" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' -d "{\"project_id\":\"$project\"}" | json_field token
}

LOAD_DIRS=()
trap 'stop_server; rm -rf "${LOAD_DIRS[@]}"' EXIT
