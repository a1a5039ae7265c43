#!/usr/bin/env bash
# Builds the packages into dist/: credagent_<version>_<arch>.deb and .rpm with
# nfpm (run from the module proxy, so the main module does not import it),
# and credagent-<version>-x64.msi with wixl. The MSI and the .exe are
# Authenticode-signed with osslsigncode when SIGN_CERT and SIGN_KEY name a
# certificate and key (PEM or DER); otherwise signing is skipped with a notice.
#
# Env: VERSION (default: git describe), ARCH (default amd64), SKIP_MSI=1,
#      SKIP_RPM=1, SIGN_CERT, SIGN_KEY, SIGN_PASS (key password, optional).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
NFPM="github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2"
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.0.0)}
# Package versions must start with a digit.
case "$VERSION" in [0-9]*) ;; *) VERSION="0.0.0~${VERSION//-/.}" ;; esac
ARCH=${ARCH:-amd64}
LDFLAGS="-s -w -X github.com/credagent/credagent/agent/version.Version=$VERSION"
mkdir -p dist bin/package bin/windows

echo "== credagent $VERSION for linux/$ARCH"
CGO_ENABLED=0 GOOS=linux GOARCH=$ARCH $GO build -trimpath -ldflags "$LDFLAGS" -o bin/package/credagent ./agent/cmd/credagent
export VERSION ARCH
formats=(deb)
[ "${SKIP_RPM:-}" = 1 ] || formats+=(rpm)
for f in "${formats[@]}"; do
	echo "== $f"
	$GO run "$NFPM" pkg --config installer/nfpm.yaml --packager "$f" --target dist/
done

if [ "${SKIP_MSI:-}" = 1 ]; then
	exit 0
fi
if ! command -v wixl >/dev/null 2>&1; then
	echo "wixl not found: skipping the MSI (scripts/prereqs.sh installs it)" >&2
	[ "${CI:-}" = true ] && exit 1
	exit 0
fi
echo "== windows/amd64 and the MSI"
CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $GO build -trimpath -ldflags "$LDFLAGS" -o bin/windows/credagent.exe ./agent/cmd/credagent

sign() { # sign FILE: Authenticode in place
	local args=(-certs "$SIGN_CERT" -key "$SIGN_KEY" -h sha256 -n credagent -i https://github.com/credagent/credagent)
	[ -n "${SIGN_PASS:-}" ] && args+=(-pass "$SIGN_PASS")
	[ -n "${SIGN_TIMESTAMP:-}" ] && args+=(-ts "$SIGN_TIMESTAMP")
	osslsigncode sign "${args[@]}" -in "$1" -out "$1.signed"
	mv "$1.signed" "$1"
}
signing=false
if [ -n "${SIGN_CERT:-}" ] && [ -n "${SIGN_KEY:-}" ]; then
	signing=true
	sign bin/windows/credagent.exe
else
	echo "notice: SIGN_CERT/SIGN_KEY not set; the .exe and .msi are not Authenticode-signed" >&2
fi
# MSI versions are numeric: keep the leading x.y.z.
msiver=$(printf '%s' "$VERSION" | grep -oE '^[0-9]+(\.[0-9]+){0,2}' || echo 0.0.0)
msi=dist/credagent-$VERSION-x64.msi
wixl -a x64 -D Version="$msiver" -D BinDir=bin/windows -D ModuleDir=installer/windows/CredAgent -o "$msi" installer/windows/credagent.wxs
$signing && sign "$msi"
ls -l dist/
