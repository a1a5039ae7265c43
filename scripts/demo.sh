#!/usr/bin/env bash
# make demo: the whole product end to end on the embedded dev defaults.
# No root, no Docker, no TPM. Everything lives in a temporary directory and
# everything started here is stopped on exit.
#
#   1. the fake CCP in dev mode (its own CA, server and application certs)
#   2. the agent in dev mode (file key store, socket in the dev dir)
#   3. credseal, playing the portal: seal the dev application certificate to
#      the agent's machine key, sign store and credential deliveries, and drop
#      them into the agent's inbox
#   4. credagent resolve sap-prod-admin through the local socket
#
# Environment: DEMO_DIR keeps the files in a given directory; SHOW=1 reveals
# the password.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
for b in credagent credseal fakeccp; do
	[ -x "$BIN/$b" ] || { echo "demo: $BIN/$b is missing: run 'make build'" >&2; exit 1; }
done

DIR=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/credagent-demo.XXXXXX")}
mkdir -p "$DIR"
CCP_DIR=$DIR/ccp AGENT_DIR=$DIR/agent
mkdir -p "$CCP_DIR" "$AGENT_DIR"
chmod 700 "$AGENT_DIR"
pids=()
cleanup() {
	local rc=$?
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ $rc -ne 0 ]; then
		echo
		echo "demo FAILED (exit $rc). Logs:" >&2
		for f in "$DIR"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
	fi
	[ -z "${DEMO_DIR:-}" ] && [ $rc -eq 0 ] && rm -rf "$DIR"
	exit $rc
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { echo "demo: $*" >&2; exit 1; }

# wait_for FILE PATTERN SECONDS: wait until FILE has a line matching PATTERN.
wait_for() {
	local file=$1 pat=$2 secs=$3 i
	for ((i = 0; i < secs * 10; i++)); do
		grep -qE "$pat" "$file" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

step "1. start the fake CCP (fakeccp dev)"
"$BIN/fakeccp" dev --dir "$CCP_DIR" --listen 127.0.0.1:0 --admin 127.0.0.1:0 >"$DIR/fakeccp.out" 2>"$DIR/fakeccp.log" &
pids+=($!)
wait_for "$DIR/fakeccp.out" '^listening on https://' 20 || fail "the fake CCP did not start"
CCP_URL=$(sed -n 's/^listening on \(https:\/\/[^ ]*\).*/\1/p' "$DIR/fakeccp.out" | head -1)
echo "fake CCP listening on $CCP_URL (CA: $CCP_DIR/ca.pem, application cert: $CCP_DIR/app.p12)"

step "2. start the agent (credagent run --dev)"
"$BIN/credagent" run --dev "$AGENT_DIR" >"$DIR/agent.out" 2>"$DIR/agent.log" &
pids+=($!)
wait_for "$DIR/agent.out" 'listening on' 20 || fail "the agent did not start"
sed -n 's/^/agent: /p' "$DIR/agent.out"
REG=$AGENT_DIR/state/registration.json
[ -f "$REG" ] || fail "the agent wrote no registration document at $REG"
echo "machine key fingerprint: $(sed -n 's/.*"fingerprint": "\(.*\)".*/\1/p' "$REG")"

step "3. seal and deliver (credseal, as the portal does)"
SIGN=$AGENT_DIR/portal-signing.key
INBOX=$AGENT_DIR/inbox
printf 'changeit' >"$DIR/p12.pass"
chmod 600 "$DIR/p12.pass"
"$BIN/credseal" app --p12 "$CCP_DIR/app.p12" --password-file "$DIR/p12.pass" --app-id DemoApp \
	--to "$REG" --sign "$SIGN" --inbox "$INBOX"
echo "sealed application DemoApp to the machine key"
"$BIN/credseal" store --name rpa-prod --display-name "RPA production vault" --server "$CCP_URL" \
	--app-id DemoApp --safe RPA-Prod --folder Root --ca-bundle "$CCP_DIR/ca.pem" \
	--to "$REG" --sign "$SIGN" --inbox "$INBOX"
echo "delivered store rpa-prod -> $CCP_URL"
"$BIN/credseal" credential --name sap-prod-admin --store rpa-prod --object sap-prod-admin \
	--to "$REG" --sign "$SIGN" --inbox "$INBOX"
echo "delivered credential sap-prod-admin"

# Wait until the agent has applied all three: check resolves through CCP
# without handing the password to anyone.
for ((i = 0; i < 100; i++)); do
	if "$BIN/credagent" check --dev "$AGENT_DIR" sap-prod-admin >"$DIR/check.out" 2>&1; then break; fi
	sleep 0.1
done
sed 's/^/check: /' "$DIR/check.out"
"$BIN/credagent" status --dev "$AGENT_DIR" 2>/dev/null | sed 's/^/status: /' || true

step "4. resolve sap-prod-admin through the local socket (credagent resolve)"
args=(resolve --dev "$AGENT_DIR" --run-id "demo-$(date +%s)" --flow-id demo-flow)
[ "${SHOW:-}" = 1 ] && args+=(--show)
out=$("$BIN/credagent" "${args[@]}" sap-prod-admin) || { echo "$out"; fail "resolve failed"; }
echo "$out"
grep -q 'svc_sap' <<<"$out" || fail "the username svc_sap was not returned"

# The password must not have reached any file the demo wrote.
if grep -rqF 'Sap-Pr0d!pass' "$AGENT_DIR" "$DIR"/*.log "$DIR"/*.out; then
	fail "the password was found on disk or in a log"
fi
step "done: resolved sap-prod-admin; the password reached no file or log"
