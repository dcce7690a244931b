#!/usr/bin/env bash
# run-host.sh: the device tests on this host, through the FUSE-file front end.
# Builds netmapd and the C test programs, starts the daemon on a private
# device path, runs every program, stops the daemon (it must exit 0 and leave
# nothing behind) and ends with exactly one line
#     device-tests: N passed, M failed
# Exit status: 0 only if nothing failed. Needs root and /dev/fuse.
#
#   Tests/device/run-host.sh
#
# Environment:
#   NETMAPD_BIN       a built netmapd (default: swift build --product netmapd
#                     with --scratch-path $NETMAPD_SCRATCH)
#   NETMAPD_SCRATCH   scratch path for that build (default: <repo>/.build-dev)
#   NETMAPD_FRONTEND  front end to start the daemon with (default: fuse)
#   NETMAPD_SHIM      if set, LD_PRELOADed into the test programs (CUSE)
#   TRAFFIC_FRAMES    frames of the acceptance run and of the other wait modes
#                     (default: 1000000)
#   KILLER_RUNS       SIGKILL runs of nm_killer (default: 100)
#   VERBOSE=1         show every PASS line, not only failures and summaries
#   KEEP=1            keep the work directory (logs, binaries) even on success
#
# Every program can also be run alone against any device:
#   prog -d /path/to/netmap ...   or   NETMAP_DEVICE=/path/to/netmap prog ...
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
src=$root/Tests/device
frames=${TRAFFIC_FRAMES:-1000000}
killer_runs=${KILLER_RUNS:-100}
frontend=${NETMAPD_FRONTEND:-fuse}

[ "$(id -u)" = 0 ] || { echo "run-host: needs root" >&2; echo "device-tests: 0 passed, 1 failed"; exit 1; }

work=$(mktemp -d /tmp/netmapd-device-tests.XXXXXX)
dev=$work/netmap
run=$work/run
daemon_pid=
passed=0
failed=0
failed_names=()
t_start=$(date +%s.%N)

cleanup() {
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill -TERM "$daemon_pid" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$daemon_pid" 2>/dev/null || true
	fi
	if grep -q " $dev " /proc/mounts 2>/dev/null; then umount -l "$dev" 2>/dev/null || true; fi
	if [ "$failed" = 0 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; else echo "run-host: logs kept in $work" >&2; fi
}
trap cleanup EXIT

result() {  # name ok reason
	if [ "$2" = 1 ]; then
		passed=$((passed + 1))
		echo "ok - $1"
	else
		failed=$((failed + 1))
		failed_names+=("$1")
		echo "not ok - $1${3:+: $3}"
	fi
}

# --- build ---
if [ -z "${NETMAPD_BIN:-}" ]; then
	scratch=${NETMAPD_SCRATCH:-$root/.build-dev}
	echo "run-host: building netmapd (scratch $scratch)"
	if ! swift build --package-path "$root" --scratch-path "$scratch" --product netmapd >"$work/build.log" 2>&1; then
		tail -30 "$work/build.log"
		result "build netmapd" 0 "swift build failed"
		echo "device-tests: $passed passed, $failed failed"
		exit 1
	fi
	NETMAPD_BIN=$(swift build --package-path "$root" --scratch-path "$scratch" --show-bin-path)/netmapd
fi
[ -x "$NETMAPD_BIN" ] || { result "netmapd binary" 0 "$NETMAPD_BIN not executable"; echo "device-tests: $passed passed, $failed failed"; exit 1; }

progs="nm_classic nm_api14 nm_errors nm_pipe_rules nm_pipe_traffic nm_killer"
build_ok=1
for p in $progs; do
	if ! gcc -O2 -Wall -Wextra -Werror -pthread -I "$root/Sources/ABI/include" "$src/$p.c" -o "$work/$p" 2>"$work/gcc-$p.log"; then
		cat "$work/gcc-$p.log"
		build_ok=0
	fi
done
result "build the C programs (gcc -O2 -Wall -Wextra -Werror)" $build_ok
[ $build_ok = 1 ] || { echo "device-tests: $passed passed, $failed failed"; exit 1; }

# --- start the daemon ---
"$NETMAPD_BIN" --frontend "$frontend" --device "$dev" --run-dir "$run" -v >"$work/netmapd.log" 2>&1 &
daemon_pid=$!
ready=0
for _ in $(seq 300); do
	grep -q "is ready" "$work/netmapd.log" && { ready=1; break; }
	kill -0 "$daemon_pid" 2>/dev/null || break
	sleep 0.1
done
if [ $ready = 0 ]; then
	cat "$work/netmapd.log"
	result "netmapd starts ($frontend)" 0 "no 'is ready' line within 30 s"
	echo "device-tests: $passed passed, $failed failed"
	exit 1
fi
result "netmapd starts ($frontend front end, device $dev)" 1

export NETMAP_DEVICE=$dev

# run_test NAME TIMEOUT_S PROG ARGS...: passes if the program exits 0 and
# printed no FAIL line, and the daemon is still running afterwards.
run_test() {
	local name=$1 limit=$2
	shift 2
	local log=$work/$(echo "$name" | tr -c 'A-Za-z0-9_-' '_').log
	local t0 t1 rc
	t0=$(date +%s.%N)
	if [ -n "${NETMAPD_SHIM:-}" ]; then
		LD_PRELOAD=$NETMAPD_SHIM timeout -k 5 "$limit" "$@" >"$log" 2>&1
	else
		timeout -k 5 "$limit" "$@" >"$log" 2>&1
	fi
	rc=$?
	t1=$(date +%s.%N)
	if [ "${VERBOSE:-0}" = 1 ]; then cat "$log"; else
		awk '!/^PASS / || /checks passed/ || /^PASS nm_(pipe_traffic|killer):/' "$log"
	fi
	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	local reason=""
	if [ $rc = 124 ] || [ $rc = 137 ]; then reason="timed out after $limit s"
	elif [ $rc != 0 ]; then reason="exit $rc"
	elif grep -q '^FAIL ' "$log"; then reason="FAIL lines"; fi
	if ! kill -0 "$daemon_pid" 2>/dev/null; then reason="${reason:+$reason; }netmapd died"; fi
	if [ -z "$reason" ]; then result "$name (${secs} s)" 1; else result "$name (${secs} s)" 0 "$reason"; fi
}

run_test "nm_classic: legacy NIOCGINFO/NIOCREGIF flow and layout" 60 "$work/nm_classic"
run_test "nm_api14: NIOCCTRL info, pools, options, extra buffers" 60 "$work/nm_api14"
run_test "nm_errors: netmap's errno for wrong requests, corrupt rings, hostile slots, dry pools" 120 "$work/nm_errors"
run_test "nm_pipe_rules: multi-ring pipes, one-direction binds, shared descriptors, resume, poll rules" 60 \
	"$work/nm_pipe_rules" multi_ring one_direction shared_descriptor receiver_swap_and_resume no_tx_poll \
	cur_thresholds thread_ioctl
run_test "nm_pipe_rules: two threads polling one descriptor are both woken" 30 "$work/nm_pipe_rules" two_pollers
run_test "nm_pipe_traffic: $frames frames, poll wake-ups (acceptance)" 300 "$work/nm_pipe_traffic" -n "$frames" -m poll -s 1
run_test "nm_pipe_traffic: $frames frames, select" 300 "$work/nm_pipe_traffic" -n "$frames" -m select -s 2
run_test "nm_pipe_traffic: $frames frames, epoll" 300 "$work/nm_pipe_traffic" -n "$frames" -m epoll -s 3
run_test "nm_pipe_traffic: $frames frames, busy NIOC*SYNC" 300 "$work/nm_pipe_traffic" -n "$frames" -m ioctl -s 4
run_test "nm_pipe_traffic: 30000 frames one per sync (poll, batch 1)" 120 "$work/nm_pipe_traffic" -n 30000 -m poll -b 1 -s 5
run_test "nm_pipe_traffic: full-ring batches (epoll, batch 1023)" 120 "$work/nm_pipe_traffic" -n 300000 -m epoll -b 1023 -s 6
run_test "nm_pipe_traffic: 7-slot rings (select, constant back-pressure)" 120 "$work/nm_pipe_traffic" -n 60000 -m select -S 7 -s 7

# four pipes at once, to exercise the daemon's threads and wake-ups together
par() {
	local pids=() rc=0
	for i in 1 2 3 4; do
		"$work/nm_pipe_traffic" -n 200000 -m poll -s $((10 + i)) -p "par$i$$" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	return $rc
}
export -f par
export work
run_test "nm_pipe_traffic: 4 pipes in parallel, 200000 frames each" 180 bash -c par
run_test "nm_killer: $killer_runs SIGKILLs mid-traffic, then register/close churn" 300 "$work/nm_killer" "$killer_runs"

# --- the daemon's log: no warnings, errors or leaks it had to reclaim ---
bad=$(grep -E '^netmapd\[[0-9]+\]: (warning|error|critical)|reclaimed' "$work/netmapd.log" | head -5)
if [ -z "$bad" ]; then result "netmapd log: no warnings, errors or reclaimed leaks" 1; else
	echo "$bad"; result "netmapd log: no warnings, errors or reclaimed leaks" 0 "see above"; fi

# --- stop: exit 0, device and region file gone ---
kill -TERM "$daemon_pid"
stopped=0
for _ in $(seq 150); do kill -0 "$daemon_pid" 2>/dev/null || { stopped=1; break; }; sleep 0.1; done
if [ $stopped = 1 ]; then
	wait "$daemon_pid"
	drc=$?
	daemon_pid=
	result "netmapd stops on SIGTERM with exit status 0" $([ $drc = 0 ] && echo 1 || echo 0) "exit $drc"
else
	result "netmapd stops on SIGTERM with exit status 0" 0 "still running after 15 s"
fi
left=""
[ -e "$dev" ] && left="$left $dev"
grep -q " $dev " /proc/mounts && left="$left (mounted)"
[ -n "$(ls -A "$run" 2>/dev/null)" ] && left="$left $(ls "$run")"
result "netmapd removed its device and region file" $([ -z "$left" ] && echo 1 || echo 0) "left:$left"

t_end=$(date +%s.%N)
rate=$(grep -h '^RESULT nm_pipe_traffic mode=poll frames='"$frames " "$work"/nm_pipe_traffic__"$frames"_frames__poll*.log 2>/dev/null | head -1)
[ -n "$rate" ] && echo "run-host: acceptance run: ${rate#RESULT nm_pipe_traffic }"
echo "run-host: $(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.0f", b - a }') s in all"
for n in "${failed_names[@]}"; do echo "run-host: failed: $n"; done
echo "device-tests: $passed passed, $failed failed"
[ "$failed" = 0 ]
