#!/bin/sh
# credagent postremove. Removal keeps the state (the machine key, sealed
# deliveries) and the config; `apt purge credagent` removes them.
set -e
case "$1" in
purge)
	rm -rf /var/lib/credagent /etc/credagent /var/log/credagent
	if getent group credagent >/dev/null 2>&1; then
		groupdel credagent >/dev/null 2>&1 || true
	fi
	;;
esac
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
