#!/usr/bin/env bash
# make e2e: the product end to end in Docker containers, on a private network
# of this machine only: two fake CCP replicas, two IIS-like Apache fronts
# (the host's apache2, scripts/prereqs.sh) and three agents, driven by
# scripts/e2e (see its package doc); then the feed scenario over 10
# agents. Builds FROM scratch images from the
# static binaries in bin/ (make build), runs the scenarios, prints a summary,
# and removes its containers, network and images whatever happens.
#
# Environment: E2E_KEEP=1 keeps the work directory (logs and collected
# state) and prints where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
for b in credagent credseal fakeccp; do
	[ -x "$BIN/$b" ] || { echo "e2e: $BIN/$b is missing: run 'make build'" >&2; exit 1; }
done
command -v docker >/dev/null || { echo "e2e: docker is not installed" >&2; exit 1; }

RUN=${E2E_RUN:-$(date +%s)-$$}
LABEL=credagent.e2e=$RUN
AGENT_IMAGE=credagent-e2e/agent:$RUN
CCP_IMAGE=credagent-e2e/fakeccp:$RUN
CTX=$(mktemp -d "${TMPDIR:-/tmp}/credagent-e2e-ctx.XXXXXX")

cleanup() {
	local rc=$?
	ids=$(docker ps -aq --filter "label=$LABEL" 2>/dev/null || true)
	[ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
	ids=$(docker ps -aq --filter "label=credagent.fleet=$RUN" 2>/dev/null || true)
	[ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
	nets=$(docker network ls -q --filter "label=$LABEL" 2>/dev/null || true)
	[ -n "$nets" ] && docker network rm $nets >/dev/null 2>&1 || true
	nets=$(docker network ls -q --filter "label=credagent.fleet=$RUN" 2>/dev/null || true)
	[ -n "$nets" ] && docker network rm $nets >/dev/null 2>&1 || true
	docker rmi -f "$AGENT_IMAGE" "$CCP_IMAGE" >/dev/null 2>&1 || true
	rm -rf "$CTX"
	exit $rc
}
trap cleanup EXIT INT TERM

start=$(date +%s)
echo "== build the images (FROM scratch)"
mkdir -p "$CTX/bin"
cp "$BIN/credagent" "$BIN/fakeccp" "$CTX/bin/"
CGO_ENABLED=0 ${GO:-go} build -trimpath -o "$CTX/bin/e2e" ./scripts/e2e
docker build -q -f installer/docker/agent.Dockerfile -t "$AGENT_IMAGE" --label "$LABEL" "$CTX" >/dev/null
docker build -q -f installer/docker/fakeccp.Dockerfile -t "$CCP_IMAGE" --label "$LABEL" "$CTX" >/dev/null
echo "   images built in $(($(date +%s) - start))s"

keep=()
[ "${E2E_KEEP:-}" = 1 ] && keep=(--keep)
# The driver has its own budget; timeout is the backstop.
timeout --kill-after=20s 540s "$CTX/bin/e2e" drive --bin "$BIN" --run "$RUN" \
	--agent-image "$AGENT_IMAGE" --ccp-image "$CCP_IMAGE" --budget 8m "${keep[@]}"
# The feed scenario of make fleet over 10 agents (about 90 s). The feed is
# served by the runner's own static server here: make fleet uses Debian's
# nginx, whose image takes minutes to build from a debootstrap root.
fleet_start=$(date +%s)
timeout --kill-after=20s 240s "$CTX/bin/e2e" fleet --bin "$BIN" --run "$RUN" \
	--agent-image "$AGENT_IMAGE" --ccp-image "$CCP_IMAGE" --feed-server static --agents 10 --poll 5s --budget 3m
echo "   fleet of 10 in $(($(date +%s) - fleet_start))s"
echo "e2e: passed in $(($(date +%s) - start))s"
