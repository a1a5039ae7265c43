#!/usr/bin/env bash
# Builds (once) a Debian root filesystem with systemd for the package tests,
# and imports it as the Docker image credagent-test/debian:bookworm. There is
# no image registry here, so the image comes from debootstrap; the tarball is
# cached under $CREDAGENT_TEST_CACHE (default /var/cache/credagent-test) so
# later runs only re-import it.
#
# Usage: scripts/debian-rootfs.sh        # prints the image name
#
# Other roots (the fleet's nginx) set DEBIAN_FLAVOUR (names the tarball),
# DEBIAN_PACKAGES (debootstrap --include), DEBIAN_IMAGE and DEBIAN_CMD.
set -euo pipefail
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${CREDAGENT_TEST_CACHE:-/var/cache/credagent-test}
FLAVOUR=${DEBIAN_FLAVOUR:-systemd}
PACKAGES=${DEBIAN_PACKAGES:-systemd,systemd-sysv,dbus,ca-certificates,procps,curl}
IMAGE=${DEBIAN_IMAGE:-credagent-test/debian:$SUITE}
CMD=${DEBIAN_CMD:-'["/sbin/init"]'}
TARBALL=$CACHE/debian-$SUITE-$FLAVOUR.tar

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
	echo "$IMAGE"
	exit 0
fi
mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ]; then
	if ! command -v debootstrap >/dev/null 2>&1; then
		echo "== installing debootstrap" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
	fi
	root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
	trap 'rm -rf "$root"' EXIT
	echo "== debootstrap $SUITE $FLAVOUR (once; cached in $TARBALL)" >&2
	debootstrap --variant=minbase --include="$PACKAGES" \
		"$SUITE" "$root" "$MIRROR" >&2
	# No getty or other units that wait for a console inside a container.
	rm -f "$root"/etc/systemd/system/getty.target.wants/* || true
	echo credagent-test >"$root/etc/hostname"
	: >"$root/etc/machine-id"
	apt_clean="$root/var/cache/apt/archives"
	rm -f "$apt_clean"/*.deb
	tar -C "$root" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
fi
docker import -c "CMD $CMD" "$TARBALL" "$IMAGE" >/dev/null
echo "$IMAGE"
