#!/usr/bin/env bash
# Builds (once) a Debian trixie root filesystem with Wine 10 and an
# initialised 64-bit prefix, for running the Windows build's tests
# (scripts/test-windows.sh). Wine 10 is needed: bookworm's Wine 8 has no
# ProcessPrng in bcryptprimitives.dll and cannot start Go 1.22+ binaries.
#
# The root is a directory under $CREDAGENT_TEST_CACHE (default
# /var/cache/credagent-test, next to the Debian root of the package tests),
# about 1.9 GB. It is kept between runs and used read-only (test-windows.sh
# mounts an overlay over it per run); it is rebuilt when missing or when
# WINE_ROOT_VERSION below changes. Building it takes about a minute.
#
# Usage: scripts/wine-root.sh      # prints the root's path
set -euo pipefail
SUITE=trixie
CACHE=${CREDAGENT_TEST_CACHE:-/var/cache/credagent-test}
ROOT=$CACHE/wine-$SUITE
# Bump when the recipe changes, so that cached roots are rebuilt.
WINE_ROOT_VERSION=1
STAMP=$ROOT/.credagent-wine-root

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WINE_ROOT_VERSION" ]; then
	echo "$ROOT"
	exit 0
fi

# The same mirror as the host's apt (deb822 or one-line format).
mirror() {
	if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
	local m
	m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
	if [ -z "$m" ]; then
		m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			sed -E 's/^deb (\[[^]]*\] )?//' | awk '{print $1}' | grep -v -- '-security' | head -n1 || true)
	fi
	echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=$(mirror)

if ! command -v debootstrap >/dev/null 2>&1; then
	echo "== installing debootstrap" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
fi

mkdir -p "$CACHE"
build=$(mktemp -d "$CACHE/wine-root.XXXXXX")
cleanup() {
	for m in "$build/dev" "$build/proc"; do
		if mountpoint -q "$m"; then umount -R "$m" 2>/dev/null || umount -lR "$m" || true; fi
	done
	rm -rf --one-file-system "$build"
}
trap cleanup EXIT

t0=$SECONDS
echo "== debootstrap $SUITE from $MIRROR (once; cached in $ROOT)" >&2
debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$build" "$MIRROR" >&2
mount -t proc proc "$build/proc"
mount --rbind /dev "$build/dev"
mount --make-rslave "$build/dev"
echo "== apt-get install wine wine64 ($((SECONDS - t0)) s)" >&2
chroot "$build" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	wine wine64 >/dev/null
chroot "$build" apt-get clean
echo "== wineboot -i ($((SECONDS - t0)) s)" >&2
chroot "$build" env WINEPREFIX=/root/.wine HOME=/root WINEDEBUG=-all XDG_RUNTIME_DIR=/tmp \
	WINEDLLOVERRIDES='mscoree,mshtml=' sh -c 'wine wineboot -i && wineserver -w' >&2
umount -R "$build/dev" 2>/dev/null || umount -lR "$build/dev"
umount "$build/proc"
echo "$WINE_ROOT_VERSION" >"$build/.credagent-wine-root"
rm -rf --one-file-system "$ROOT"
mv "$build" "$ROOT"
echo "== Wine root ready in $((SECONDS - t0)) s" >&2
echo "$ROOT"
