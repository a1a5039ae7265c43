#!/usr/bin/env bash
# Installs the .deb in a Debian container running systemd and walks the
# package's life: install (enabled, not started), start (Type=notify READY),
# status, a resolve against a fake CCP in the same container (sealed
# deliveries made with credseal), reload, doctor, stop, remove (state kept),
# purge (state gone).
#
# The image comes from scripts/debian-rootfs.sh (debootstrap, cached; no
# registry needed). systemd runs as PID 1 with CAP_SYS_ADMIN and the host's
# cgroup tree; --privileged is refused by this Docker host.
#
# Usage: scripts/deb-test.sh [path/to/credagent.deb]   (default: newest in dist/)
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:-$(ls -t dist/credagent_*_amd64.deb 2>/dev/null | head -1)}
if [ -z "$deb" ]; then
	SKIP_MSI=1 SKIP_RPM=1 ./scripts/package.sh >&2
	deb=$(ls -t dist/credagent_*_amd64.deb | head -1)
fi
image=$(./scripts/debian-rootfs.sh)
name=credagent-debtest-$$
tmp=$(mktemp -d)
cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
step() { echo "== $*"; }
ctr() { docker exec "$name" "$@"; }
active() { ctr systemctl is-active credagent.service 2>/dev/null || true; }
fail() { echo "FAIL: $*" >&2; ctr journalctl -u credagent --no-pager -n 50 >&2 || true; exit 1; }
run() { "$@" || fail "$*"; }

step "boot systemd in $image"
docker run -d --name "$name" --cap-add SYS_ADMIN --tmpfs /run --tmpfs /run/lock \
	-v /sys/fs/cgroup:/sys/fs/cgroup:rw "$image" /sbin/init >/dev/null
for _ in $(seq 1 60); do
	s=$(ctr systemctl is-system-running 2>/dev/null || true)
	case "$s" in running | degraded) break ;; esac
	sleep 0.5
done
echo "systemd: $s"

step "install $(basename "$deb")"
docker cp "$deb" "$name":/tmp/credagent.deb
ctr dpkg -i /tmp/credagent.deb
ctr systemctl is-enabled credagent.service | grep -qx enabled || fail "unit not enabled"
[ "$(active)" = inactive ] || fail "unit started before configuration"
ctr getent group credagent >/dev/null || fail "no credagent group"
[ "$(ctr stat -c %a /etc/credagent/config.yaml)" = 600 ] || fail "config not 0600"
ctr systemd-analyze verify /usr/lib/systemd/system/credagent.service || fail "systemd-analyze verify"
ctr credagent install | grep -q "already installed" || fail "install is not idempotent over the package's unit"

step "configure: pin a portal signing key (the agent refuses to run without one), allow root"
# The portal's side, for the resolve below: its tool and a fake CCP.
CGO_ENABLED=0 go build -trimpath -o "$tmp/" ./agent/cmd/credseal ./agent/cmd/fakeccp
docker cp "$tmp/credseal" "$name":/usr/local/bin/credseal
docker cp "$tmp/fakeccp" "$name":/usr/local/bin/fakeccp
run ctr credseal keygen --out /root/portal
run ctr credagent install --configure-only --portal-key @/root/portal.pub
ctr grep -q "BEGIN PUBLIC KEY" /etc/credagent/config.yaml || fail "portal key not in the config"
cat >"$tmp/policy.yaml" <<'EOF'
policy:
  rules:
    - {name: operator, uids: [0], credentials: ["*"]}
EOF
docker cp "$tmp/policy.yaml" "$name":/tmp/policy.yaml
ctr sh -c 'cat /tmp/policy.yaml >>/etc/credagent/config.yaml'

step "start"
run ctr credagent start
[ "$(active)" = active ] || fail "not active after start (Type=notify READY)"
ctr systemctl show credagent.service -p StatusText | grep -q serving || fail "no STATUS=serving from sd_notify"
[ "$(ctr stat -c '%a %G' /run/credagent)" = "750 credagent" ] || fail "runtime dir: $(ctr stat -c '%a %G' /run/credagent)"
ctr credagent status
ctr credagent doctor || true

step "resolve: fake CCP, sealed deliveries, credagent resolve through the socket"
docker exec -d "$name" fakeccp dev --dir /root/ccp --listen 127.0.0.1:8443 --admin 127.0.0.1:8444
for _ in $(seq 1 100); do ctr test -f /root/ccp/app.p12 && ctr curl -sk -o /dev/null https://127.0.0.1:8443/ && break; sleep 0.2; done
ctr test -f /var/lib/credagent/registration.json || fail "the agent wrote no registration document"
ctr sh -c 'printf changeit >/root/p12.pass'
reg=/var/lib/credagent/registration.json
in=/var/lib/credagent/inbox
run ctr credseal app --p12 /root/ccp/app.p12 --password-file /root/p12.pass --app-id DemoApp --to $reg --sign /root/portal.key --inbox $in
run ctr credseal store --name rpa-prod --server https://127.0.0.1:8443 --app-id DemoApp --safe RPA-Prod --ca-bundle /root/ccp/ca.pem --to $reg --sign /root/portal.key --inbox $in
run ctr credseal credential --name sap-prod-admin --store rpa-prod --object sap-prod-admin --to $reg --sign /root/portal.key --inbox $in
ok=
for _ in $(seq 1 100); do
	if ctr credagent check sap-prod-admin >/dev/null 2>&1; then ok=1; break; fi
	sleep 0.1
done
[ -n "$ok" ] || { ctr credagent check sap-prod-admin || true; fail "check never succeeded"; }
out=$(ctr credagent resolve --run-id deb-test sap-prod-admin) || fail "resolve: $out"
echo "$out"
grep -q 'username="svc_sap"' <<<"$out" || fail "resolve did not return svc_sap"
if ctr sh -c 'journalctl -u credagent --no-pager -o cat; find /var/lib/credagent -type f -exec cat {} +' | grep -qaF 'Sap-Pr0d!pass'; then
	fail "the password reached the journal or the state directory"
fi

step "reload (good config, then a bad one that is refused)"
pid=$(ctr systemctl show -p MainPID --value credagent.service)
ctr credagent reload
ctr sh -c 'cp /etc/credagent/config.yaml /tmp/good && echo "bogus: 1" >>/etc/credagent/config.yaml'
if ctr credagent reload; then fail "reload accepted a bad config"; fi
ctr cp /tmp/good /etc/credagent/config.yaml
[ "$(ctr systemctl show -p MainPID --value credagent.service)" = "$pid" ] || fail "reload restarted the process"
[ "$(active)" = active ] || fail "not active after reload"

step "stop"
ctr credagent stop
[ "$(active)" = inactive ] || fail "still active after stop"
ctr journalctl -u credagent --no-pager -o cat | tail -5

step "remove keeps config and state; purge removes them"
ctr dpkg -r credagent
ctr test -d /var/lib/credagent || fail "remove deleted the state"
ctr test -f /etc/credagent/config.yaml || fail "remove deleted the config"
ctr dpkg -P credagent
ctr test ! -e /var/lib/credagent || fail "purge kept the state"
ctr test ! -e /etc/credagent || fail "purge kept the config"
echo "PASS: deb install, start, status, resolve, reload, stop, remove, purge"
