#!/usr/bin/env bash
# The fleet's feed server: Debian's nginx in an image imported from a
# debootstrap root (there is no image registry), built once and cached by
# scripts/debian-rootfs.sh. Prints the image name.
set -euo pipefail
cd "$(dirname "$0")/.."
DEBIAN_FLAVOUR=nginx DEBIAN_PACKAGES=nginx-light,ca-certificates \
	DEBIAN_IMAGE=credagent-fleet/nginx:bookworm DEBIAN_CMD='["/usr/sbin/nginx","-g","daemon off;"]' \
	exec scripts/debian-rootfs.sh
