#!/bin/sh
# credagent postinstall (deb: configure; rpm: %post). Creates the socket
# group, and enables the unit without starting it: the agent starts at the
# next boot or with `credagent start`, once it has been configured. On an
# upgrade a running agent is restarted onto the new binary.
set -e
if ! getent group credagent >/dev/null 2>&1; then
	groupadd --system credagent
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	systemctl enable credagent.service >/dev/null 2>&1 || true
	if systemctl is-active --quiet credagent.service; then
		systemctl restart credagent.service || true
	fi
fi
exit 0
