#!/usr/bin/env bash
# Installs the Debian packages the tests use, when run as root.
# swtpm: the TPM 2.0 key-store tests. wixl, msitools: building and inspecting
# the MSI. systemd: systemd-analyze verify of the unit. debootstrap: the
# Debian root filesystem the .deb is installed into (no image registry here).
# openssl: the .pfx files of both encodings that credseal's tests open.
# apache2: the IIS-like TLS fronts of the CCP tests (per-location client
# certificates by renegotiation, and after a TLS 1.3 handshake).
# python3: the Python client's tests (agent/localapi/client/python).
set -euo pipefail
need=()
command -v swtpm >/dev/null 2>&1 || need+=(swtpm swtpm-tools)
command -v wixl >/dev/null 2>&1 || need+=(wixl msitools)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -x /usr/sbin/apache2 ] || need+=(apache2)
# Debian's python3 (not a version manager's): the Python client's tests.
[ -x /usr/bin/python3 ] || need+=(python3)
# promtool (`promtool check metrics` validates agent/metrics' output): only
# the promtool binary is taken from Debian's prometheus package (apt-get
# download, dpkg-deb -x; about 20 MB), so that no Prometheus server is
# installed or started. It is kept in /var/cache/credagent-test and linked as
# /usr/local/bin/promtool.
if ! command -v promtool >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "== installing promtool from Debian's prometheus package"
		cache=/var/cache/credagent-test/prometheus
		tmp=$(mktemp -d)
		chmod 755 "$tmp"
		apt-get update -qq
		(cd "$tmp" && apt-get download -qq prometheus 2>/dev/null)
		rm -rf "$cache" && mkdir -p "$cache"
		dpkg-deb -x "$tmp"/prometheus_*.deb "$cache"
		rm -rf "$tmp"
		ln -sf "$cache/usr/bin/promtool" /usr/local/bin/promtool
		promtool --version >/dev/null
	elif [ "${CI:-}" = "true" ]; then
		echo "missing test prerequisite: promtool (run as root to install it)" >&2
		exit 1
	else
		echo "note: promtool not installed; the metrics format check will be skipped (run as root to install)" >&2
	fi
fi
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
