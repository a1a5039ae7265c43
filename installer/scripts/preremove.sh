#!/bin/sh
# credagent preremove (deb: remove/upgrade; rpm: %preun with $1 = 0 on
# removal, 1 on upgrade). Stops and disables the unit on removal only.
set -e
case "$1" in
remove|0)
	if [ -d /run/systemd/system ]; then
		systemctl stop credagent.service >/dev/null 2>&1 || true
		systemctl disable credagent.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
