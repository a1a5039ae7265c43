#!/usr/bin/env bash
# make bench: build the benchmark harness (scripts/bench) and run it against
# the binaries make build put in bin/. It starts what it needs on loopback,
# stops everything it started, and writes bench/results.json, bench/README.md
# and bench/latency.png. Extra arguments go to the harness (-rounds, -profile
# auto|always|never, -keep, -budget); see `bin/bench -h`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
[ -x "$BIN/credagent" ] || { echo "bench: $BIN/credagent is missing: run 'make build'" >&2; exit 1; }
mkdir -p "$BIN"
go build -o "$BIN/bench" ./scripts/bench
exec "$BIN/bench" -bin "$BIN" -out bench -readme README.md "$@"
