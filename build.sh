#!/usr/bin/env bash
# FastIngest build entry point. On a fresh Debian machine with only the .NET SDK:
#   ./build.sh run [server flags]   install native build deps, publish the AOT binary, start it
#   ./build.sh test                 unit + integration tests, then the AOT smoke test against the binary
#   ./build.sh publish              just produce ./publish/fastingest
#   ./build.sh bench                load benchmark (wrk) against the AOT binary, prints one table
#   ./build.sh microbench [filter]  BenchmarkDotNet: authentication cost, SQLite-only insert ceiling
#   ./build.sh crash [--cycles N]   kill -9 crash test: every acknowledged run must survive
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
PUBLISH_DIR="$ROOT/publish"
BINARY="$PUBLISH_DIR/fastingest"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# Installing Debian's postgresql may start its default cluster; the tests need none of it running.
stop_system_postgres() {
  if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | awk '$4 == "online"' | grep -q .; then
    pg_lsclusters -h | awk '$4 == "online" {print $1, $2}' | while read -r version cluster; do
      as_root pg_ctlcluster "$version" "$cluster" stop || true
    done
  fi
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "build.sh: need root (or sudo) to run: $*" >&2; exit 1; fi
}

# Native AOT needs clang and zlib; the binary links Debian's static libsqlite3.a; the bench needs wrk.
ensure_packages() {
  local missing=()
  command -v clang >/dev/null || missing+=(clang)
  [ -f /usr/include/zlib.h ] || missing+=(zlib1g-dev)
  [ -f /usr/lib/x86_64-linux-gnu/libsqlite3.a ] || missing+=(libsqlite3-dev)
  # Each extra is a command, or command:package when the package is named otherwise; a command that is not on
  # PATH may be given as a path glob (PostgreSQL's initdb lives under /usr/lib/postgresql/<version>/bin).
  for extra in "$@"; do
    local probe=${extra%%:*}
    if [[ $probe == /* ]]; then
      compgen -G "$probe" >/dev/null || missing+=("${extra##*:}")
    else
      command -v "$probe" >/dev/null || missing+=("${extra##*:}")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "build.sh: installing ${missing[*]}" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

publish() {
  ensure_packages
  rm -rf "$PUBLISH_DIR"
  dotnet publish src/FastIngest/FastIngest.csproj -c Release -r linux-x64 -o "$PUBLISH_DIR" -nologo -v quiet \
    -p:DebugType=none
  echo "build.sh: published $BINARY ($(du -h "$BINARY" | cut -f1))" >&2
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
  publish)
    publish
    ;;
  run)
    publish
    exec "$BINARY" "$@"
    ;;
  test)
    # The dashboard's browser tests drive Debian's headless Chromium through chromedriver; the storage contract
    # runs against a throwaway PostgreSQL cluster the tests start themselves (initdb in a temp directory, a free
    # port, stopped at the end), so the package's own cluster is never started or touched.
    ensure_packages chromium chromedriver:chromium-driver '/usr/lib/postgresql/*/bin/initdb:postgresql'
    stop_system_postgres
    publish
    # The benchmarks are not tests, but they must keep compiling against the code they measure.
    dotnet build load/FastIngest.Benchmarks -c Release -nologo -v quiet
    FASTINGEST_BINARY="$BINARY" dotnet test FastIngest.sln -c Release -nologo "$@"
    ;;
  bench)
    ensure_packages wrk
    publish
    exec "$ROOT/load/bench.sh" "$BINARY" "$@"
    ;;
  microbench)
    ensure_packages
    cd "$ROOT/load/FastIngest.Benchmarks"
    # A bare word matches anywhere in the full name (AuthenticationBenchmarks.UnknownId, ...).
    FILTER=${1:-*}; [[ "$FILTER" == *"*"* ]] || FILTER="*$FILTER*"
    exec dotnet run -c Release -- --filter "$FILTER"
    ;;
  crash)
    publish
    FASTINGEST_BINARY="$BINARY" exec "$ROOT/load/crash.sh" "$BINARY" "$@"
    ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    [ "$cmd" = help ] || exit 2
    ;;
esac
