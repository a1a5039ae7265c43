# Sourced by scripts/e2e.sh and scripts/fleet.sh: what both do before
# their driver runs. containers_begin KIND checks the binaries and docker,
# names the run (RUN; LABEL=credagent.KIND=RUN), builds the FROM scratch
# images AGENT_IMAGE and CCP_IMAGE from bin/ with the driver (scripts/e2e)
# in CTX/bin/e2e, and removes on exit, whatever happens, every container,
# network and image of the run: of each label kind given (KIND and any
# further kinds the run starts, as make e2e starts the fleet's).
#
#   . scripts/containers.sh
#   containers_begin e2e fleet
#   "$CTX/bin/e2e" drive --run "$RUN" --agent-image "$AGENT_IMAGE" ...

containers_begin() {
	local kind=$1
	CONTAINER_KINDS=("$@")
	BIN=${BIN:-bin}
	for b in credagent credseal fakeccp; do
		[ -x "$BIN/$b" ] || { echo "$kind: $BIN/$b is missing: run 'make build'" >&2; exit 1; }
	done
	command -v docker >/dev/null || { echo "$kind: docker is not installed" >&2; exit 1; }
	local var
	var=$(echo "$kind" | tr '[:lower:]' '[:upper:]')_RUN
	RUN=${!var:-$(date +%s)-$$}
	LABEL=credagent.$kind=$RUN
	AGENT_IMAGE=credagent-$kind/agent:$RUN
	CCP_IMAGE=credagent-$kind/fakeccp:$RUN
	CTX=$(mktemp -d "${TMPDIR:-/tmp}/credagent-$kind-ctx.XXXXXX")
	trap containers_cleanup EXIT INT TERM
	mkdir -p "$CTX/bin"
	cp "$BIN/credagent" "$BIN/fakeccp" "$CTX/bin/"
	CGO_ENABLED=0 ${GO:-go} build -trimpath -o "$CTX/bin/e2e" ./scripts/e2e
	docker build -q -f installer/docker/agent.Dockerfile -t "$AGENT_IMAGE" --label "$LABEL" "$CTX" >/dev/null
	docker build -q -f installer/docker/fakeccp.Dockerfile -t "$CCP_IMAGE" --label "$LABEL" "$CTX" >/dev/null
}

containers_cleanup() {
	local rc=$? k ids nets
	for k in "${CONTAINER_KINDS[@]}"; do
		ids=$(docker ps -aq --filter "label=credagent.$k=$RUN" 2>/dev/null || true)
		[ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
		nets=$(docker network ls -q --filter "label=credagent.$k=$RUN" 2>/dev/null || true)
		[ -n "$nets" ] && docker network rm $nets >/dev/null 2>&1 || true
	done
	docker rmi -f "$AGENT_IMAGE" "$CCP_IMAGE" >/dev/null 2>&1 || true
	rm -rf "$CTX"
	exit $rc
}
