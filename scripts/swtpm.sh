#!/usr/bin/env bash
# Start or stop a software TPM 2.0 (Debian's swtpm) for development and tests.
#
#   scripts/swtpm.sh start [DIR]   start one, state and pid in DIR (default .swtpm)
#   scripts/swtpm.sh stop  [DIR]   stop it
#   scripts/swtpm.sh wipe  [DIR]   stop it and delete its state: a "cleared TPM"
#   scripts/swtpm.sh status [DIR]
#
# start prints the device string for the key store, e.g.
#   tcp://127.0.0.1:2321
# to use as keystore.tpm_device in the config (with keystore.backend: tpm).
# SWTPM_PORT (default 2321) sets the command port; the control port is +1.
#
# The Go tests do not need this script: they start and stop their own swtpm
# (platform/keystore/keystoretest).
set -euo pipefail

cmd=${1:-}
dir=${2:-.swtpm}
port=${SWTPM_PORT:-2321}
pidfile=$dir/swtpm.pid

need_swtpm() {
	if ! command -v swtpm >/dev/null 2>&1; then
		echo "swtpm is not installed: run scripts/prereqs.sh as root (Debian package swtpm)" >&2
		exit 1
	fi
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

stop() {
	if running; then
		pid=$(cat "$pidfile")
		kill "$pid"
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
	fi
	rm -f "$pidfile"
}

case "$cmd" in
start)
	need_swtpm
	if running; then echo "already running (pid $(cat "$pidfile"))" >&2; echo "tcp://127.0.0.1:$(cat "$dir/port")"; exit 0; fi
	mkdir -p "$dir/state"
	chmod 700 "$dir"
	swtpm socket --tpm2 \
		--server "type=tcp,port=$port,bindaddr=127.0.0.1" \
		--ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
		--tpmstate "dir=$dir/state" \
		--flags not-need-init,startup-clear \
		--log "file=$dir/swtpm.log" \
		--pid "file=$pidfile" \
		--daemon
	echo "$port" >"$dir/port"
	for _ in $(seq 50); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "tcp://127.0.0.1:$port"
			exit 0
		fi
		sleep 0.1
	done
	echo "swtpm did not start; see $dir/swtpm.log" >&2
	exit 1
	;;
stop)
	stop
	;;
wipe)
	stop
	rm -rf "$dir/state"
	echo "state deleted: the next start is a cleared TPM"
	;;
status)
	if running; then echo "running (pid $(cat "$pidfile")) at tcp://127.0.0.1:$(cat "$dir/port")"; else echo "stopped"; exit 3; fi
	;;
*)
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
