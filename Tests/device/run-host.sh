#!/usr/bin/env bash
# run-host.sh: the device tests on this host, through the FUSE-file front end.
# Builds netmapd and the C test programs, starts the daemon on a private
# device path, runs every program, stops the daemon (it must exit 0 and leave
# nothing behind), then (issue #8, robustness):
#   - SIGKILL with clients attached: a client (nm_faults hold) sleeping in
#     poll(POLLIN) and poll(POLLOUT) is woken, its ioctls fail (the errno is
#     shown: ENOTCONN for the FUSE file), nothing hangs; a daemon restarted on
#     the same device and run directory detaches the dead mount, its pool is
#     pristine (nm_faults fresh, and equal to the first daemon's at start) and
#     a fresh client registers and moves traffic;
#   - permissions: a daemon with --mode 0660 --group nogroup (and under umask
#     077): a user outside the group cannot open the device or the region
#     file (EACCES, read or write), a member (primary or supplementary group)
#     registers, maps and moves traffic (nm_faults fresh); the region file has
#     the device's mode and group, the control socket is 0600 root:root,
#     neither more accessible than the device; with the default --mode 0600 a
#     group member is refused as well;
# and ends with exactly one line
#     device-tests: N passed, M failed
# Exit status: 0 only if nothing failed and every expected result arrived
# (Tests/lib/results.sh). Needs root and /dev/fuse.
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
#   FAULT_FRAMES      frames per direction of nm_faults fork_concurrent
#                     (default: 100000)
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

. "$root/Tests/lib/results.sh"
. "$root/Tests/lib/daemon.sh"
results_init device-tests
[ "$(id -u)" = 0 ] || { echo "run-host: needs root" >&2; expect 1; result "run as root" 0; finish; }

work=$(mktemp -d /tmp/netmapd-device-tests.XXXXXX)
dev=$work/netmap
run=$work/run
daemon_pid=
t_start=$(date +%s.%N)

cleanup() {
	[ -z "$daemon_pid" ] || daemon_stop "$daemon_pid" 10
	if grep -q " $dev " /proc/mounts 2>/dev/null; then umount -l "$dev" 2>/dev/null || true; fi
	if [ "$results_failed" = 0 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; else echo "run-host: logs kept in $work" >&2; fi
}
trap cleanup EXIT

# --- build ---
expect 2   # the C programs build, the daemon starts
if [ -z "${NETMAPD_BIN:-}" ]; then
	scratch=${NETMAPD_SCRATCH:-$root/.build-dev}
	echo "run-host: building netmapd (scratch $scratch)"
	if ! swift build --package-path "$root" --scratch-path "$scratch" --product netmapd >"$work/build.log" 2>&1; then
		tail -30 "$work/build.log"
		result "build netmapd" 0 "swift build failed"
		finish
	fi
	NETMAPD_BIN=$(swift build --package-path "$root" --scratch-path "$scratch" --show-bin-path)/netmapd
fi
[ -x "$NETMAPD_BIN" ] || { result "netmapd binary" 0 "$NETMAPD_BIN not executable"; finish; }

progs="nm_classic nm_api14 nm_errors nm_fidelity nm_pipe_rules nm_pipe_traffic nm_killer nm_faults nm_monitor nm_vale"
build_ok=1
for p in $progs; do
	if ! gcc -O2 -Wall -Wextra -Werror -pthread -I "$root/Sources/ABI/CNetmapABI/include" "$src/$p.c" -o "$work/$p" 2>"$work/gcc-$p.log"; then
		cat "$work/gcc-$p.log"
		build_ok=0
	fi
done
result "build the C programs (gcc -O2 -Wall -Wextra -Werror)" $build_ok
[ $build_ok = 1 ] || finish

# --- start the daemon ---
# start_daemon LOG ARGS...: netmapd on $dev/$run; sets daemon_pid; 0 once ready.
start_daemon() {
	local log=$1
	shift
	daemon_start "$log" "grep -q 'is ready' '$log'" 30 \
		"$NETMAPD_BIN" --frontend "$frontend" --device "$dev" --run-dir "$run" -v "$@"
	local rc=$?
	daemon_pid=$DAEMON_PID
	return $rc
}
# stop_daemon: SIGTERM, up to 15 s; sets drc (999: still running, killed).
stop_daemon() {
	daemon_stop "$daemon_pid" 15
	drc=$DAEMON_RC
	daemon_pid=
}
start_daemon "$work/netmapd.log"
ready=$?
if [ $ready != 0 ]; then
	cat "$work/netmapd.log"
	result "netmapd starts ($frontend)" 0 "no 'is ready' line within 30 s"
	finish
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
		awk '!/^PASS / || /checks passed/ || /^PASS nm_(pipe_traffic|killer):/' "$log" | grep -v '^INFO nm_faults: \(peer\|child\):' 
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

expect 26   # the run_test lines below
run_test "nm_classic: legacy NIOCGINFO/NIOCREGIF flow and layout" 60 "$work/nm_classic"
run_test "nm_api14: NIOCCTRL info, pools, options, extra buffers" 60 "$work/nm_api14"
run_test "nm_errors: netmap's errno for wrong requests, corrupt rings, hostile slots, dry pools" 120 "$work/nm_errors"
run_test "nm_fidelity: option walk, null ports, pipe geometry and clamps, empty-name info, mem ids, raw ring ids, check order, extra-buffer lists (issue #14)" 60 "$work/nm_fidelity"
run_test "nm_pipe_rules: multi-ring pipes, one-direction binds, shared descriptors, resume, poll rules" 60 \
	"$work/nm_pipe_rules" multi_ring one_direction shared_descriptor receiver_swap_and_resume no_tx_poll \
	cur_thresholds thread_ioctl
run_test "nm_pipe_rules: two threads polling one descriptor are both woken" 30 "$work/nm_pipe_rules" two_pollers
run_test "nm_vale: VALE errno cases, memory ids, port info, headers, VALE_LIST (issue #15)" 60 "$work/nm_vale" errors
run_test "nm_vale: learning bridge with three ports, unicast, flood, broadcast, multicast" 60 "$work/nm_vale" learning
run_test "nm_vale: a full receiver drops for itself only; fragment chains" 60 "$work/nm_vale" drops
run_test "nm_vale: SIGKILL of a port's only client leaves no port or switch" 60 "$work/nm_vale" killed
run_test "nm_vale: $frames frames vale0:a -> vale0:b, byte-exact, poll" 300 "$work/nm_vale" traffic "$frames" 1
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
run_test "nm_faults mapped_close: a registration lives until munmap or exit, not close" 60 "$work/nm_faults" mapped_close
# monitors (issue #16): about 10 s together
run_test "nm_monitor copy: /t on the sending end and two /r on the receiving end of a pipe see all $frames frames" 300 \
	"$work/nm_monitor" copy "$frames"
run_test "nm_monitor zcopy: a /z monitor of the sending end gets all $frames frames, the receiver too" 300 \
	"$work/nm_monitor" zcopy "$frames"
run_test "nm_monitor churn: monitors of every kind come, go and are SIGKILLed mid-transfer; pool whole" 300 \
	"$work/nm_monitor" churn "$frames"
run_test "nm_monitor errors: netmap's errnos for monitors, legacy flags, orphaned monitors" 60 "$work/nm_monitor" errors
run_test "nm_monitor copy on VALE ports: /t on the sender's port, two /r on the receiver's see all $frames frames" 300 \
	"$work/nm_monitor" copy "$frames" vale

# --- the daemon's log: no warnings, errors or leaks it had to reclaim ---
expect 3   # the log, the stop, nothing left
bad=$(grep -E '^netmapd\[[0-9]+\]: (warning|error|critical)|reclaimed' "$work/netmapd.log" | head -5)
if [ -z "$bad" ]; then result "netmapd log: no warnings, errors or reclaimed leaks" 1; else
	echo "$bad"; result "netmapd log: no warnings, errors or reclaimed leaks" 0 "see above"; fi

# --- stop: exit 0, device and region file gone ---
stop_daemon
result "netmapd stops on SIGTERM with exit status 0" $([ $drc = 0 ] && echo 1 || echo 0) \
	"$([ $drc = 999 ] && echo "still running after 15 s" || echo "exit $drc")"
left=""
[ -e "$dev" ] && left="$left $dev"
grep -q " $dev " /proc/mounts && left="$left (mounted)"
[ -n "$(ls -A "$run" 2>/dev/null)" ] && left="$left $(ls "$run")"
result "netmapd removed its device and region file" $([ -z "$left" ] && echo 1 || echo 0) "left:$left"

# --- SIGKILL with clients attached, then a restart on the same paths ---
# The first daemon's pool at its start, for comparison after the restart.
pool0=
expect 6
if start_daemon "$work/netmapd-k1.log"; then
	pool0=$("$work/nm_faults" poolstat)
	# On this daemon, not the first: a client that scribbles its slots makes
	# the daemon reclaim buffers when the last client goes (a logged notice).
	run_test "nm_faults: a closed client scribbling its mapped rings; fork with both halves on one descriptor" 120 \
		"$work/nm_faults" -n "${FAULT_FRAMES:-100000}" closed_writer fork_concurrent
	mkfifo "$work/hold.in"
	timeout -k 5 60 "$work/nm_faults" hold <"$work/hold.in" >"$work/hold.log" 2>&1 &
	hold_pid=$!
	exec 8>"$work/hold.in"
	held=0
	for _ in $(seq 100); do grep -q '^held' "$work/hold.log" && { held=1; break; }; sleep 0.1; done
	kill -KILL "$daemon_pid"
	wait "$daemon_pid" 2>/dev/null
	daemon_pid=
	sleep 0.3
	echo go >&8
	exec 8>&-
	wait "$hold_pid"
	hrc=$?
	grep -E '^(FAIL|INFO)' "$work/hold.log"
	errs=$(sed -n 's/^INFO nm_faults: after the daemon died: \(.*\)/\1/p' "$work/hold.log")
	result "SIGKILL with clients attached: sleeping polls woken, ioctls fail ($errs), nothing hangs" \
		$([ $held = 1 ] && [ $hrc = 0 ] && ! grep -q '^FAIL' "$work/hold.log" && echo 1 || echo 0) "held $held, exit $hrc"
	if start_daemon "$work/netmapd-k2.log"; then
		result "restart after SIGKILL on the same device and run directory (stale FUSE mount detached)" \
			$( { [ "$frontend" != fuse ] || grep -q "detaching stale FUSE mount at $dev" "$work/netmapd-k2.log"; } && echo 1 || echo 0)
		run_test "nm_faults fresh: the restarted daemon's pool is pristine, a new client registers and moves traffic" 60 \
			"$work/nm_faults" fresh
		pool1=$("$work/nm_faults" poolstat)
		result "the restarted daemon's pool equals the first one's at its start" \
			$([ -n "$pool0" ] && [ "$pool0" = "$pool1" ] && echo 1 || echo 0) "before: $pool0; after: $pool1"
		stop_daemon
		left=""
		[ -e "$dev" ] && left="$left $dev"
		grep -q " $dev " /proc/mounts && left="$left (mounted)"
		[ -n "$(ls -A "$run" 2>/dev/null)" ] && left="$left $(ls "$run")"
		result "the restarted daemon stops with exit status 0 and leaves nothing" \
			$([ $drc = 0 ] && [ -z "$left" ] && echo 1 || echo 0) "exit $drc, left:$left"
	else
		tail -5 "$work/netmapd-k2.log"
		result "restart after SIGKILL" 0 "no 'is ready' line"
	fi
else
	result "netmapd starts for the SIGKILL test" 0 "no 'is ready' line"
fi

# --- permissions: --mode/--group enforced for other users ---
# Other users must reach $work (and run the test program in it).
chmod 0711 "$work"
as_outsider() { setpriv --reuid=nobody --regid=daemon --clear-groups "$@"; }
as_member() { setpriv --reuid=nobody --regid=daemon --groups=nogroup "$@"; }
as_primary() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
# can_open MODE PATH: opens PATH for reading (r) or reading and writing (rw).
can_open() { if [ "$1" = r ]; then sh -c 'exec 3<"$1"' sh "$2" 2>/dev/null; else sh -c 'exec 3<>"$1"' sh "$2" 2>/dev/null; fi; }
export -f can_open
expect 6   # 5 with --mode 0660, 1 with the default mode
old_umask=$(umask)
umask 077
start_daemon "$work/netmapd-perm.log" --mode 0660 --group nogroup --pool-buffers 4096
prc=$?
umask "$old_umask"
if [ $prc = 0 ]; then
	d=$(stat -c '%a %U:%G' "$dev")
	r=$(stat -c '%a %U:%G' "$run/region-1")
	c=$(stat -c '%a %U:%G' "$run/control")
	result "--mode 0660 --group nogroup under umask 077: device $d, region file $r, control socket $c" \
		$([ "$d" = "660 root:nogroup" ] && [ "$r" = "660 root:nogroup" ] && [ "$c" = "600 root:root" ] && echo 1 || echo 0)
	out=""
	for m in r rw; do
		as_outsider bash -c "can_open $m $dev" && out="$out device:$m"
		as_outsider bash -c "can_open $m $run/region-1" && out="$out region:$m"
		as_outsider bash -c "can_open $m $run/control" && out="$out control:$m"
	done
	e=$(as_outsider bash -c "exec 3<>$dev" 2>&1)
	result "a user outside the group opens neither the device nor the region file nor the control socket (${e##*: })" \
		$([ -z "$out" ] && [[ "$e" == *"Permission denied"* ]] && echo 1 || echo 0) "opened:$out"
	as_member "$work/nm_faults" fresh >"$work/perm-member.log" 2>&1
	mrc=$?
	grep '^FAIL' "$work/perm-member.log"
	result "a member of the group (supplementary) registers, maps and moves 2000 frames" \
		$([ $mrc = 0 ] && echo 1 || echo 0) "exit $mrc"
	as_primary "$work/nm_faults" fresh >"$work/perm-primary.log" 2>&1
	prc=$?
	grep '^FAIL' "$work/perm-primary.log"
	result "a member of the group (primary) registers, maps and moves 2000 frames" \
		$([ $prc = 0 ] && echo 1 || echo 0) "exit $prc"
	stop_daemon
	result "the permissions daemon stops with exit status 0" $([ $drc = 0 ] && echo 1 || echo 0) "exit $drc"
else
	tail -5 "$work/netmapd-perm.log"
	result "netmapd starts with --mode 0660 --group nogroup" 0 "no 'is ready' line"
fi
if start_daemon "$work/netmapd-perm2.log" --group nogroup --pool-buffers 4096; then
	d=$(stat -c '%a %U:%G' "$dev")
	r=$(stat -c '%a %U:%G' "$run/region-1")
	out=""
	as_member bash -c "can_open r $dev" && out="$out device"
	as_member bash -c "can_open r $run/region-1" && out="$out region"
	result "default --mode 0600 with --group nogroup (device $d, region $r): a group member is refused" \
		$([ "$d" = "600 root:nogroup" ] && [ "$r" = "600 root:nogroup" ] && [ -z "$out" ] && echo 1 || echo 0) "opened:$out"
	stop_daemon
else
	tail -5 "$work/netmapd-perm2.log"
	result "netmapd starts with --group nogroup" 0 "no 'is ready' line"
fi

t_end=$(date +%s.%N)
rate=$(grep -h '^RESULT nm_pipe_traffic mode=poll frames='"$frames " "$work"/nm_pipe_traffic__"$frames"_frames__poll*.log 2>/dev/null | head -1)
[ -n "$rate" ] && echo "run-host: acceptance run: ${rate#RESULT nm_pipe_traffic }"
echo "run-host: $(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.0f", b - a }') s in all"
finish
