#!/usr/bin/env bash
# make soak: build the soak harness (scripts/soak) and run it against the
# binaries make build put in bin/: one agent, two fake CCP replicas, callers
# of several OS users, and the agent's world changing on its own clocks,
# for SOAK (default 10m). Writes bench/soak.json, bench/soak.png and the
# soak section of bench/README.md; exits 1 when something grows.
#
#   SOAK=30m make soak          a longer run
#   scripts/soak.sh --ci        the CI version: 60 s at speed 10 (the same
#                               checks over ten simulated minutes), output
#                               to a temporary directory, not bench/
#
# Run as root: the soak creates its callers' users (credsoak1..3) and the
# socket group (credsoak), and removes what it created. Extra arguments go to
# the harness (-keep, -rate; see `bin/soak -h`).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
for b in credagent fakeccp; do
	[ -x "$BIN/$b" ] || { echo "soak: $BIN/$b is missing: run 'make build'" >&2; exit 1; }
done
mkdir -p "$BIN"
# The same flags as make build, so that the build cache serves the agent packages.
CGO_ENABLED=0 ${GO:-go} build -trimpath -o "$BIN/soak" ./scripts/soak
if [ "${1:-}" = --ci ]; then
	shift
	out=$(mktemp -d "${TMPDIR:-/tmp}/credagent-soak.XXXXXX")
	trap 'rm -rf "$out"' EXIT
	# The harness stops itself; timeout is the backstop.
	timeout --kill-after=10s 150s "$BIN/soak" -bin "$BIN" -duration 60s -speed 10 -out "$out" "$@"
	exit
fi
exec "$BIN/soak" -bin "$BIN" -duration "${SOAK:-10m}" -out bench -readme bench/README.md "$@"
