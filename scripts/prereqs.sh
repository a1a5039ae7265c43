#!/usr/bin/env bash
# Installs the Debian packages the tests use, when run as root.
# swtpm: the TPM 2.0 key-store tests. wixl, msitools: building and inspecting
# the MSI. systemd: systemd-analyze verify of the unit. debootstrap: the
# Debian root filesystem the .deb is installed into (no image registry here).
# openssl: the .pfx files of both encodings that credseal's tests open.
# apache2: the IIS-like TLS fronts of the CCP tests (per-location client
# certificates by renegotiation, and after a TLS 1.3 handshake).
set -euo pipefail
need=()
command -v swtpm >/dev/null 2>&1 || need+=(swtpm swtpm-tools)
command -v wixl >/dev/null 2>&1 || need+=(wixl msitools)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -x /usr/sbin/apache2 ] || need+=(apache2)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "== installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
elif [ "${CI:-}" = "true" ]; then
	echo "missing test prerequisites: ${need[*]} (run as root to install them)" >&2
	exit 1
else
	echo "note: ${need[*]} not installed; the tests that need them will be skipped (run as root to install)" >&2
fi
