#!/usr/bin/env bash
# make e2e: the product end to end in Docker containers, on a private network
# of this machine only: two fake CCP replicas, two IIS-like Apache fronts
# (the host's apache2, scripts/prereqs.sh) and three agents, driven by
# scripts/e2e (see its package doc); then the feed scenario over 10
# agents. Builds FROM scratch images from the
# static binaries in bin/ (make build), runs the scenarios, prints a summary,
# and removes its containers, network and images whatever happens
# (scripts/containers.sh).
#
# Environment: E2E_KEEP=1 keeps the work directory (logs and collected
# state) and prints where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/containers.sh

start=$(date +%s)
echo "== build the images (FROM scratch)"
# make e2e ends with the fleet scenario: its containers are the run's too.
containers_begin e2e fleet
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
	--agent-image "$AGENT_IMAGE" --ccp-image "$CCP_IMAGE" --feed-server static --agents 10 --rss-agents 2 --poll 5s --budget 3m
echo "   fleet of 10 in $(($(date +%s) - fleet_start))s"
echo "e2e: passed in $(($(date +%s) - start))s"
