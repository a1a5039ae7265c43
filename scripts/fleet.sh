#!/usr/bin/env bash
# make fleet (not part of make test): the feed at scale. Debian's nginx (an
# image imported from a debootstrap root, scripts/fleet-nginx.sh) serves a
# feed tree; two fake CCP replicas; FLEET_AGENTS (default 100) FROM scratch
# agents polling every FLEET_POLL (default 10s). Measures propagation, idle
# cost, the CCP rate after an outage and a revocation (scripts/e2e fleet),
# and merges the figures into bench/results.json. Removes its containers,
# network and images whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
for b in credagent credseal fakeccp; do
	[ -x "$BIN/$b" ] || { echo "fleet: $BIN/$b is missing: run 'make build'" >&2; exit 1; }
done
command -v docker >/dev/null || { echo "fleet: docker is not installed" >&2; exit 1; }
NGINX_IMAGE=$(scripts/fleet-nginx.sh)

RUN=${FLEET_RUN:-$(date +%s)-$$}
LABEL=credagent.fleet=$RUN
AGENT_IMAGE=credagent-fleet/agent:$RUN
CCP_IMAGE=credagent-fleet/fakeccp:$RUN
CTX=$(mktemp -d "${TMPDIR:-/tmp}/credagent-fleet-ctx.XXXXXX")
cleanup() {
	local rc=$?
	ids=$(docker ps -aq --filter "label=$LABEL" 2>/dev/null || true)
	[ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
	nets=$(docker network ls -q --filter "label=$LABEL" 2>/dev/null || true)
	[ -n "$nets" ] && docker network rm $nets >/dev/null 2>&1 || true
	docker rmi -f "$AGENT_IMAGE" "$CCP_IMAGE" >/dev/null 2>&1 || true
	rm -rf "$CTX"
	exit $rc
}
trap cleanup EXIT INT TERM

start=$(date +%s)
mkdir -p "$CTX/bin"
cp "$BIN/credagent" "$BIN/fakeccp" "$CTX/bin/"
CGO_ENABLED=0 ${GO:-go} build -trimpath -o "$CTX/bin/e2e" ./scripts/e2e
docker build -q -f installer/docker/agent.Dockerfile -t "$AGENT_IMAGE" --label "$LABEL" "$CTX" >/dev/null
docker build -q -f installer/docker/fakeccp.Dockerfile -t "$CCP_IMAGE" --label "$LABEL" "$CTX" >/dev/null
keep=()
[ "${FLEET_KEEP:-}" = 1 ] && keep=(--keep)
timeout --kill-after=30s 1500s "$CTX/bin/e2e" fleet --bin "$BIN" --run "$RUN" \
	--agent-image "$AGENT_IMAGE" --ccp-image "$CCP_IMAGE" --feed-image "$NGINX_IMAGE" --feed-server nginx \
	--agents "${FLEET_AGENTS:-100}" --poll "${FLEET_POLL:-10s}" --results bench/results.json --budget 24m "${keep[@]}"
echo "fleet: done in $(($(date +%s) - start))s; figures merged into bench/results.json"
