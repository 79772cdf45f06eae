#!/usr/bin/env bash
# Cold restart of a fleet: N tokens are created, the server is restarted (every token is cold again: nothing is
# cached), then all N are used for the first time at once, as a CI fleet does when the server comes back.
# Prints how many got 200 / 503 / other and how long the burst took. Loopback only.
# Usage: load/cold_restart.sh <binary> [--tokens 1000] [--rounds 3]
set -euo pipefail
BINARY=${1:?usage: cold_restart.sh <binary> [--tokens N] [--rounds R]}
shift
TOKENS=1000 ROUNDS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --tokens) TOKENS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "cold_restart.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d /tmp/fastingest-cold.XXXXXX)
PORT=$(( 20000 + RANDOM % 12000 )) # below the ephemeral range (32768+), where a client socket could hold it
BASE="http://127.0.0.1:$PORT"
SERVER_PIN="" CLIENT_PIN=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then SERVER_PIN="taskset -c 0"; CLIENT_PIN="taskset -c 1"; fi
SERVER=
start_server() {
  $SERVER_PIN "$BINARY" --listen "127.0.0.1:$PORT" --data "$WORK/data" --log-level warning --rate-manage 1000000 \
    >>"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 400); do curl -sf "$BASE/healthz" >/dev/null && return; sleep 0.05; done
  echo "cold_restart.sh: server did not start" >&2; exit 1
}
stop_server() { kill -TERM "$SERVER"; wait "$SERVER" || true; }
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

start_server
ADMIN=$(cat "$WORK/data/admin-token")
json_field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }
ORG=$(curl -sf -XPOST "$BASE/v1/orgs" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' -d '{"name":"fleet"}' | json_field id)
PROJECT=$(curl -sf -XPOST "$BASE/v1/projects" -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  -d "{\"org_id\":\"$ORG\",\"name\":\"fleet\"}" | json_field id)
seq "$TOKENS" | xargs -P 4 -I{} sh -c "curl -sf -XPOST '$BASE/v1/tokens' -H 'Authorization: Bearer $ADMIN' \
  -H 'content-type: application/json' -d '{\"project_id\":\"$PROJECT\",\"scope\":\"read\"}' | grep -o '\"token\":\"[^\"]*\"' | cut -d'\"' -f4" \
  >"$WORK/tokens"
echo "cold_restart: $(wc -l <"$WORK/tokens") tokens, $ROUNDS rounds, $(nproc) cores" >&2

for round in $(seq "$ROUNDS"); do
  stop_server
  start_server
  # Every token's first use at once, from 256 concurrent connections.
  $CLIENT_PIN python3 - "$BASE" "$WORK/tokens" "$round" <<'PY'
import sys, time, urllib.request, urllib.error, concurrent.futures, collections
base, path, round_ = sys.argv[1], sys.argv[2], sys.argv[3]
tokens = [t.strip() for t in open(path) if t.strip()]
def use(token):
    request = urllib.request.Request(base + "/v1/runs?limit=1", headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
started = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(max_workers=256) as pool:
    statuses = collections.Counter(pool.map(use, tokens))
elapsed = time.monotonic() - started
print(f"round {round_}: {len(tokens)} first uses in {elapsed:.2f} s: " + ", ".join(f"{k} x {v}" for k, v in sorted(statuses.items())))
PY
done
