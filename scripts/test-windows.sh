#!/usr/bin/env bash
# make test-windows: the Windows build run under Wine 10.
#
#   - every package's Windows test binary (GOOS=windows go test -c), run
#     from its package directory so that testdata/ resolves;
#   - the dev-mode agent end to end: native fakeccp, credagent.exe run --dev,
#     credseal.exe deliveries, check/status/resolve over the named pipe, and
#     a scan of every file the Windows side wrote for the passwords;
#   - the service under Wine's services.exe (TestServiceLifecycle, elevated);
#   - the MSI under Wine's msiexec, install and uninstall.
#
# One table at the end: package, pass, fail, skip, known. It fails on any
# failure that scripts/test-windows.skip does not list as a Wine gap.
#
# Needs root (debootstrap, chroot, mounts). The trixie + Wine root is built
# once by scripts/wine-root.sh and kept in $CREDAGENT_TEST_CACHE; each run
# mounts an overlay over it, so every run starts from the same fresh prefix
# and the root is never changed. Everything is unmounted on exit.
#
# Env: WINE_PHASES (default tests,e2e,service,msi), WINE_PKG (a regexp of
# package directories to test), WINE_JOBS (default 2), WINE_KEEP=1 keeps the
# work directory, WINE_VERBOSE=1 prints every test binary's output.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd -P)
GO=${GO:-go}
t0=$SECONDS

if [ "$(id -u)" -ne 0 ]; then
	if [ "${CI:-}" = true ]; then
		echo "test-windows: needs root (chroot and mounts)" >&2
		exit 1
	fi
	echo "test-windows: skipped: needs root (chroot and mounts)" >&2
	exit 0
fi

# wixl and msitools build the MSI of the (msi) phase; make test has run
# this already, a bare make test-windows on a fresh machine has not.
./scripts/prereqs.sh >&2
ROOT=$(./scripts/wine-root.sh)
# OVL: the overlay (upper layer, its work dir, the mount point M). WORK:
# binaries, logs and the end-to-end files, bound at the same path in M.
OVL=$(mktemp -d /tmp/credagent-wine-root.XXXXXX)
WORK=$(mktemp -d /tmp/credagent-wine.XXXXXX)
M=$OVL/root
mkdir -p "$OVL/upper" "$OVL/ovl" "$M" "$WORK/bin" "$WORK/logs"

cleanup() {
	local rc=$?
	if mountpoint -q "$M"; then
		chroot "$M" env WINEPREFIX=/root/.wine HOME=/root XDG_RUNTIME_DIR=/tmp wineserver -k 2>/dev/null || true
		# The repository and work binds first, then /dev, /proc, the overlay.
		for m in "$M$WORK" "$M$REPO" "$M/dev" "$M/proc" "$M"; do
			if mountpoint -q "$m"; then umount -R "$m" 2>/dev/null || umount -lR "$m" || true; fi
		done
	fi
	mountpoint -q "$M" || rm -rf --one-file-system "$OVL"
	if [ "${WINE_KEEP:-}" = 1 ] || [ $rc -ne 0 ]; then
		echo "test-windows: logs kept in $WORK/logs (and $WORK/e2e, $WORK/msi)" >&2
		rm -rf --one-file-system "$WORK/tests" "$WORK/bin" 2>/dev/null || true
	else
		rm -rf --one-file-system "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT INT TERM

mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$OVL/upper,workdir=$OVL/ovl" "$M"
mount -t proc proc "$M/proc"
mount --rbind /dev "$M/dev"
mount --make-rslave "$M/dev"
mkdir -p "$M$REPO" "$M$WORK"
mount --bind "$REPO" "$M$REPO"
mount --bind "$WORK" "$M$WORK"
echo "== Wine root ready in $((SECONDS - t0)) s ($ROOT, overlay in $OVL)"

args=(-root "$M" -upper "$OVL/upper" -work "$WORK" -skip scripts/test-windows.skip
	-phases "${WINE_PHASES:-tests,e2e,service,msi}" -jobs "${WINE_JOBS:-2}")
[ -n "${WINE_PKG:-}" ] && args+=(-pkg "$WINE_PKG")
[ "${WINE_VERBOSE:-}" = 1 ] && args+=(-v)
$GO run ./scripts/wintest "${args[@]}"
echo "== make test-windows took $((SECONDS - t0)) s"
