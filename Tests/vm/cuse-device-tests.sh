#!/usr/bin/env bash
# The real daemon over CUSE: starts netmapd --frontend cuse inside the test
# VM and runs the project's device test programs (Tests/device/nm_*.c)
# against it, each with LD_PRELOAD=libnetmapd-shim.so. Ends with
# "cuse-device-tests: N passed, M failed" and exits non-zero on any failure,
# when the VM run fails, or when fewer results than expected come back
# (Tests/lib/results.sh).
#
#   Tests/vm/cuse-device-tests.sh [--no-build] [--timeout SECONDS]
#
# Environment (guest): NETMAPD_FRONTEND (default cuse; the kernel matrix
# passes auto). Environment: SCRATCH (swift scratch path, default .build-cuse), NETMAPD (a
# prebuilt netmapd binary: skips the swift build), OUT (where the shim and
# the C programs are built, default build/cuse-device), NM_TESTS (the test
# command lines, one per line; the default leaves out nm_killer, whose
# "traffic before the kill" check depends on timing that emulation breaks).
#
# Then, on the same daemon: names resolve in the caller's network namespace
# (two namespaces with a veth pair; pkt_errors from each).
# After those (issue #8, robustness), on fresh daemons in the same VM:
#   - nm_faults closed_writer + fork_concurrent (a closed client scribbling its
#     mapped rings, fork with both halves on one descriptor);
#   - SIGKILL with a client (nm_faults hold) sleeping in poll(POLLIN) and
#     poll(POLLOUT): both woken, ioctls fail (the errno is printed: what CUSE
#     gives), nothing hangs (timeouts); the daemon restarted on /dev/netmap
#     and the same run directory comes up, its pool is pristine and a fresh
#     client moves traffic (nm_faults fresh);
#   - the restarted daemon runs with --mode 0660 --group nogroup: the CUSE
#     node and the region file are 0660 root:nogroup, a user outside the
#     group (setpriv) cannot open either, a member registers, maps (shim,
#     region file) and moves traffic.
# FAULT_FRAMES (default 5000): frames per direction of fork_concurrent.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
. "$repo/Tests/lib/results.sh"
. "$repo/Tests/lib/daemon.sh"
out="${OUT:-$repo/build/cuse-device}"
scratch="${SCRATCH:-.build-cuse}"
default_tests='nm_classic
nm_api14
nm_errors
nm_fidelity
nm_pipe_rules
nm_pipe_traffic -n 1000000 -m poll
nm_pipe_traffic -n 2000 -m select
nm_pipe_traffic -n 2000 -m epoll
nm_pipe_traffic -n 2000 -m ioctl
nm_monitor copy 20000
nm_monitor zcopy 20000
nm_monitor errors
nm_vale traffic 100000 1
nm_vale learning
nm_vale errors'
# Results of the guest: one a test line, the daemon's clean stop, then the
# 8 robustness results.
guest_results() { echo $(( $(grep -c . <<<"${NM_TESTS:-$default_tests}") + 1 + 1 + 8 )); }

# ---- the part that runs inside the VM ----------------------------------------
if [ "${1:-}" = "--guest" ]; then
	daemon="$2" bin="$3"
	log="$NETMAPD_VM_RESULTS/netmapd.log"
	mkdir -p /run/netmapd
	up() {  # LOG ARGS...: starts netmapd on /dev/netmap; sets pid; 0 once ready
		local l=$1 rc
		shift
		daemon_start "$l" "[ -c /dev/netmap ] && grep -q 'is ready' '$l'" 30 \
			"$daemon" --frontend "${NETMAPD_FRONTEND:-cuse}" --device /dev/netmap "$@" && rc=0 || rc=$?
		pid=$DAEMON_PID
		return $rc
	}
	results_init guest
	expect "$(guest_results)"
	up "$log" --mode 0666 || { cat "$log"; result "netmapd comes up" 0; finish; }
	while IFS= read -r t; do
		[ -n "$t" ] || continue
		s=$(date +%s.%N)
		rc=0
		# shellcheck disable=SC2086 # the line is a command with its arguments
		LD_PRELOAD="$bin/libnetmapd-shim.so" timeout 300 "$bin"/$t >"$NETMAPD_VM_RESULTS/out.txt" 2>&1 || rc=$?
		e=$(date +%s.%N)
		secs=$(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.1f", b - a }')
		result "$t (${secs} s)" $([ "$rc" = 0 ] && echo 1 || echo 0) "exit $rc"
		if [ "$rc" != 0 ]; then
			grep -E '^FAIL' "$NETMAPD_VM_RESULTS/out.txt" | head -20 || tail -20 "$NETMAPD_VM_RESULTS/out.txt"
		fi
	done <<<"${NM_TESTS:-$default_tests}"

	# ---- names resolve in the caller's network namespace (issue #20) ----
	# Two namespaces joined by a veth pair, the one daemon outside both:
	# from A, A's end exists and B's does not (API 14 and legacy).
	if ip netns add cuA && ip netns add cuB &&
		ip link add name cuva netns cuA type veth peer name cuvb netns cuB; then
		nsrc=0
		nsenter --net=/run/netns/cuA "$bin/pkt_errors" info /dev/netmap cuva OK >"$NETMAPD_VM_RESULTS/ns.txt" 2>&1 || nsrc=1
		for req in info register ginfo regif; do
			nsenter --net=/run/netns/cuA "$bin/pkt_errors" $req /dev/netmap cuvb ENXIO >>"$NETMAPD_VM_RESULTS/ns.txt" 2>&1 || nsrc=1
		done
		nsenter --net=/run/netns/cuB "$bin/pkt_errors" register /dev/netmap cuvb OK >>"$NETMAPD_VM_RESULTS/ns.txt" 2>&1 || nsrc=1
		grep '^FAIL' "$NETMAPD_VM_RESULTS/ns.txt" || true
		result "CUSE: a name means the caller's interface (A's own end found, B's ENXIO from A in 4 requests)" \
			$([ $nsrc = 0 ] && echo 1 || echo 0)
		ip netns del cuA; ip netns del cuB
	else
		result "CUSE: names in the caller's network namespace" 0 "could not make the namespaces"
	fi
	daemon_stop "$pid" 30
	result "netmapd stopped cleanly" $([ "$DAEMON_RC" = 0 ] && echo 1 || echo 0) "exit $DAEMON_RC"
	[ "$DAEMON_RC" = 0 ] || cat "$log"

	# ---- robustness (issue #8) ----
	shim="$bin/libnetmapd-shim.so"
	R=$NETMAPD_VM_RESULTS
	if up "$R/netmapd-k1.log" --mode 0666; then
		rc=0
		LD_PRELOAD=$shim timeout 300 "$bin/nm_faults" -n "${FAULT_FRAMES:-5000}" closed_writer fork_concurrent >"$R/faults.txt" 2>&1 || rc=$?
		grep -E '^(FAIL|KNOWN|INFO nm_faults: after)' "$R/faults.txt" || true
		result "nm_faults closed_writer fork_concurrent (CUSE): $(tail -1 "$R/faults.txt")" $([ $rc = 0 ] && echo 1 || echo 0) "exit $rc"
		fifo=/tmp/nm_faults-hold.in   # a FIFO cannot live on the 9p results folder
		rm -f "$fifo"
		mkfifo "$fifo"
		LD_PRELOAD=$shim timeout -k 5 120 "$bin/nm_faults" hold <"$fifo" >"$R/hold.txt" 2>&1 &
		hp=$!
		exec 8>"$fifo"
		held=0
		for _ in $(seq 1 300); do grep -q '^held' "$R/hold.txt" && { held=1; break; }; sleep 0.1; done
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null || true
		sleep 0.5
		echo go >&8
		exec 8>&-
		hrc=0
		wait "$hp" || hrc=$?
		grep -E '^(FAIL|INFO)' "$R/hold.txt" || true
		errs=$(sed -n 's/^INFO nm_faults: after the daemon died: \(.*\)/\1/p' "$R/hold.txt")
		result "SIGKILL with clients attached (CUSE): sleeping polls woken, ioctls fail ($errs), nothing hangs" \
			$([ $held = 1 ] && [ $hrc = 0 ] && echo 1 || echo 0) "held $held, exit $hrc"
		if up "$R/netmapd-k2.log" --mode 0660 --group nogroup; then
			result "restart after SIGKILL on /dev/netmap and the same run directory" 1
			rc=0
			LD_PRELOAD=$shim timeout 120 "$bin/nm_faults" fresh >"$R/fresh.txt" 2>&1 || rc=$?
			grep -E '^(FAIL|POOL)' "$R/fresh.txt" || true
			result "the restarted daemon's pool is pristine; a fresh client registers and moves traffic" $([ $rc = 0 ] && echo 1 || echo 0) "exit $rc"
			d=$(stat -c '%a %U:%G' /dev/netmap)
			r=$(stat -c '%a %U:%G' /run/netmapd/region-1)
			result "--mode 0660 --group nogroup: CUSE node $d, region file $r" \
				$([ "$d" = "660 root:nogroup" ] && [ "$r" = "660 root:nogroup" ] && echo 1 || echo 0)
			opened=""
			setpriv --reuid=nobody --regid=daemon --clear-groups sh -c 'exec 3<>/dev/netmap' 2>/dev/null && opened="$opened device"
			setpriv --reuid=nobody --regid=daemon --clear-groups sh -c 'exec 3</dev/netmap' 2>/dev/null && opened="$opened device:r"
			setpriv --reuid=nobody --regid=daemon --clear-groups sh -c 'exec 3</run/netmapd/region-1' 2>/dev/null && opened="$opened region"
			result "a user outside the group opens neither the device nor the region file" $([ -z "$opened" ] && echo 1 || echo 0) "opened:$opened"
			rc=0
			LD_PRELOAD=$shim setpriv --reuid=nobody --regid=daemon --groups=nogroup timeout 120 "$bin/nm_faults" fresh >"$R/member.txt" 2>&1 || rc=$?
			grep -E '^FAIL' "$R/member.txt" || true
			result "a member of the group registers, maps (shim) and moves traffic" $([ $rc = 0 ] && echo 1 || echo 0) "exit $rc"
			daemon_stop "$pid" 30
			result "the restarted netmapd stops cleanly" $([ "$DAEMON_RC" = 0 ] && echo 1 || echo 0) "exit $DAEMON_RC"
		else
			tail -5 "$R/netmapd-k2.log"
			result "restart after SIGKILL" 0 "not ready"
		fi
	else
		tail -5 "$R/netmapd-k1.log"
		result "netmapd starts for the robustness tests" 0 "not ready"
	fi
	finish
fi

# ---- host: build, then boot ---------------------------------------------------
build=1
timeout_s=400
while [ $# -gt 0 ]; do
	case "$1" in
	--no-build) build=0; shift ;;
	--timeout) timeout_s="$2"; shift 2 ;;
	*) echo "usage: $0 [--no-build] [--timeout SECONDS]" >&2; exit 2 ;;
	esac
done
if [ -n "${NETMAPD:-}" ]; then
	daemon="$NETMAPD"
else
	[ "$build" = 0 ] || swift build --scratch-path "$scratch" --product netmapd
	daemon="$(swift build --scratch-path "$scratch" --show-bin-path)/netmapd"
fi
[ -x "$daemon" ] || { echo "cuse-device-tests: no netmapd at $daemon" >&2; exit 2; }
mkdir -p "$out"
gcc -O2 -g -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden -I Sources/ABI/CNetmapABI/include \
	-o "$out/libnetmapd-shim.so" Sources/Shim/netmapd_shim.c -ldl -pthread
for src in Tests/device/nm_*.c; do
	gcc -O2 -g -Wall -I Sources/ABI/CNetmapABI/include -o "$out/$(basename "$src" .c)" "$src" -pthread
done
gcc -O2 -g -Wall -I Sources/ABI/CNetmapABI/include -o "$out/pkt_errors" Tests/net/pkt_errors.c
export NM_TESTS="${NM_TESTS:-$default_tests}"
results_init cuse-device-tests
vm_out=$(mktemp /tmp/netmapd-cuse-device-tests.XXXXXX)
trap 'rm -f "$vm_out"' EXIT
# The guest's lines are shown as they come; its results are counted after.
rc=0
"$repo/Tests/vm/run-in-vm.sh" --timeout "$timeout_s" -e "NM_TESTS=$NM_TESTS" -e "FAULT_FRAMES=${FAULT_FRAMES:-5000}" -- \
	"$repo/Tests/vm/cuse-device-tests.sh" --guest "$daemon" "$out" 2>&1 | tee "$vm_out" || rc=${PIPESTATUS[0]}
results_quiet=1 child_results "" "$rc" "$vm_out" "$(guest_results)" || true
finish
