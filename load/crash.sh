#!/usr/bin/env bash
# kill -9 crash test, long version: load/crash.sh <binary> [--cycles N]
# Runs tests/FastIngest.Tests/Smoke/CrashTests.cs against the given AOT binary for N cycles (default 100) and
# prints its summary: cycles, acknowledged runs, lost runs (must be 0), integrity_check after every restart.
set -euo pipefail
BINARY=${1:?usage: crash.sh <binary> [--cycles N]}
shift
CYCLES=100
while [ $# -gt 0 ]; do
  case "$1" in
    --cycles) CYCLES=$2; shift 2 ;;
    *) echo "crash.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
FASTINGEST_BINARY=$(realpath "$BINARY") FASTINGEST_CRASH_CYCLES=$CYCLES \
  dotnet test tests/FastIngest.Tests -c Release --filter "FullyQualifiedName~CrashTests" --logger "console;verbosity=normal" \
  | grep -E "crash test:|Passed|Failed|Error Message|lost|stored" 
