# daemon.sh: starting a daemon for a test and stopping it again, one way
# for every script (the device, service, net and CUSE VM tests, the bench,
# the soak and the demo through Tests/net/netns-lib.sh). Source it, then:
#
#   daemon_start LOG READY SECONDS CMD [ARG...]
#       runs CMD in the background, stdout and stderr to LOG (emptied first,
#       so a restart does not find the last run's lines); its pid is in
#       DAEMON_PID. Returns 0 as soon as the shell condition READY holds
#       (eval'd, e.g. "grep -q 'is ready' $log"), 1 when CMD ends first or
#       SECONDS pass.
#   daemon_stop PID [SECONDS]
#       SIGTERM, then waits up to SECONDS (default 15) for the end; SIGKILL
#       if it is still running. DAEMON_RC: its exit status, 999 when it had
#       to be killed, 0 when it was gone already. PID must be a child of
#       this shell (daemon_start's) for the status to be known.

daemon_start() {  # LOG READY SECONDS CMD [ARG...]
	local log=$1 ready=$2 seconds=$3 i
	shift 3
	: >"$log"
	"$@" >"$log" 2>&1 &
	DAEMON_PID=$!
	for (( i = 0; i < seconds * 10; i++ )); do
		eval "$ready" 2>/dev/null && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

daemon_stop() {  # PID [SECONDS]
	local pid=$1 seconds=${2:-15} i
	# Written to work under set -e as well: every status is taken with ||.
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null && DAEMON_RC=0 || DAEMON_RC=$?
		[ "$DAEMON_RC" != 127 ] || DAEMON_RC=0   # not our child, or reaped
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for (( i = 0; i < seconds * 10; i++ )); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		DAEMON_RC=999
		return 0
	fi
	wait "$pid" 2>/dev/null && DAEMON_RC=0 || DAEMON_RC=$?
	return 0
}

# The daemon a net suite runs: PATH, else $NETMAPD, else a debug build in
# ROOT/.build-pkt. Sets NETMAPD to an absolute path; returns 1 if the build
# fails.
#   daemon_find ROOT [PATH]
daemon_find() {
	local root=$1
	NETMAPD=${2:-${NETMAPD:-}}
	if [ -z "$NETMAPD" ]; then
		echo "building netmapd (scratch $root/.build-pkt)" >&2
		swift build --package-path "$root" --scratch-path "$root/.build-pkt" --product netmapd >&2 || return 1
		NETMAPD=$(swift build --package-path "$root" --scratch-path "$root/.build-pkt" --show-bin-path)/netmapd
	fi
	NETMAPD=$(readlink -f "$NETMAPD")
}
