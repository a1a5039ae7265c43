#!/usr/bin/env bash
# make fleet (not part of make test): the feed at scale. Debian's nginx (an
# image imported from a debootstrap root, scripts/fleet-nginx.sh) serves a
# feed tree; two fake CCP replicas; FLEET_AGENTS (default 100) FROM scratch
# agents polling every FLEET_POLL (default 10s), and FLEET_RSS_AGENTS
# (default 5) more without the feed, the baseline of the feed's RSS.
# Measures propagation, idle cost, the CCP rate after an outage, a
# revocation and the feed's RSS (scripts/e2e fleet), and merges the figures
# into bench/results.json. Removes its containers, network and images
# whatever happens (scripts/containers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/containers.sh
command -v docker >/dev/null || { echo "fleet: docker is not installed" >&2; exit 1; }
NGINX_IMAGE=$(scripts/fleet-nginx.sh)

start=$(date +%s)
containers_begin fleet
keep=()
[ "${FLEET_KEEP:-}" = 1 ] && keep=(--keep)
timeout --kill-after=30s 1500s "$CTX/bin/e2e" fleet --bin "$BIN" --run "$RUN" \
	--agent-image "$AGENT_IMAGE" --ccp-image "$CCP_IMAGE" --feed-image "$NGINX_IMAGE" --feed-server nginx \
	--agents "${FLEET_AGENTS:-100}" --rss-agents "${FLEET_RSS_AGENTS:-5}" --poll "${FLEET_POLL:-10s}" \
	--results bench/results.json --budget 24m "${keep[@]}"
echo "fleet: done in $(($(date +%s) - start))s; figures merged into bench/results.json"
