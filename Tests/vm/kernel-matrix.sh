#!/usr/bin/env bash
# The kernel matrix (issue #21): the project's suites on the Debian kernels
# users run, each in the test VM (Tests/vm/run-in-vm.sh), one boot per
# kernel and suite. Ends with a kernel x suite table and
# "kernel-matrix: N passed, M failed".
#
#   Tests/vm/kernel-matrix.sh [--no-build]
#
# Suites (SUITES, default all, in this order):
#   device         netmapd --frontend auto (whatever it picks there) and the
#                  device programs, namespaces, then the SIGKILL/restart and
#                  permission tests (Tests/vm/cuse-device-tests.sh --guest)
#   frontend       what --frontend auto picks: CUSE where /dev/cuse exists;
#                  with /dev/cuse hidden, and with CUSE failing to start (a
#                  device path CUSE cannot make), a FUSE file where the kernel
#                  has passthrough, else a refusal naming both fixes; each
#                  served device answers PORT_INFO_GET (3 results)
#   net-packet     Tests/net/run-net-tests.sh, AF_PACKET backend
#   net-xdp        Tests/net/run-xdp-tests.sh, AF_XDP backend
#   bridge-packet  Tests/vm/bridge-test.sh: a zero-copy bridge between two
#   bridge-xdp     veth pairs, each backend
# Kernels (KERNELS, default "6.1 6.12 6.12-cloud"; run-in-vm.sh --kernel).
#
# A cell is "pass N", "FAIL N/M", or "n/a" where the kernel lacks what the
# suite needs and the daemon says so (the reason is printed): the net
# suites run through the FUSE file front end, which needs FUSE passthrough
# (Linux 6.9+); on older kernels the daemon's own refusal is checked
# instead (one result: it names passthrough and 6.9).
#
# Environment: NETMAPD (a prebuilt netmapd), SCRATCH (swift scratch path,
# default .build-kmatrix), OUT (build/kernel-matrix), NET_COUNT (frames per
# net-suite transfer in the VM, default 20000), BRIDGE_FRAMES (3000) and
# BRIDGE_RATE (500 frames/s: what the emulated bridge forwards without its
# receive rings overflowing),
# VM_TIMEOUT (per boot, default 900 s).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
. "$repo/Tests/lib/results.sh"
# ---- inside the VM: what --frontend auto does on this kernel -------------------
if [ "${1:-}" = --guest-frontend ]; then
	daemon=$2 bin=$3
	results_init frontend
	expect 3
	export LD_PRELOAD="$bin/libnetmapd-shim.so"
	mkdir -p /run/netmapd
	passthrough=0
	[ "$(printf '%s\n' "$(uname -r | cut -d. -f1,2)" 6.9 | sort -V | head -1)" = 6.9 ] && passthrough=1
	# try DEVICE LOG: starts netmapd --frontend auto on DEVICE; prints how it
	# came up (CUSE, FUSE, or failed) and queries it once.
	try() {
		local dev=$1 log=$2 p how
		env -u LD_PRELOAD timeout 60 "$daemon" --frontend auto --device "$dev" --backend packet >"$log" 2>&1 &
		p=$!
		for _ in $(seq 1 300); do grep -q 'is ready' "$log" || ! kill -0 $p 2>/dev/null && break; sleep 0.1; done
		how=failed
		grep -q 'is ready (CUSE)' "$log" && how=CUSE
		grep -q 'is ready (FUSE' "$log" && how=FUSE
		if [ $how != failed ]; then
			NETMAPD_DEVICE=$dev "$bin/pkt_errors" info "$dev" lo OK >/dev/null 2>&1 || how="$how, PORT_INFO_GET failed"
			kill $p
		fi
		wait $p 2>/dev/null
		echo "$how"
	}
	got=$(try /dev/netmap /tmp/fe1.log)
	result "auto with /dev/cuse present: $got" $([ "$got" = CUSE ] && echo 1 || echo 0)
	mv /dev/cuse /dev/cuse.hidden
	got=$(try /dev/netmap /tmp/fe2.log)
	mv /dev/cuse.hidden /dev/cuse
	msg=$(grep -m1 'no front end works' /tmp/fe2.log | sed 's/^netmapd[^:]*: [a-z]*: //')
	if [ $passthrough = 1 ]; then
		result "auto without /dev/cuse, kernel $(uname -r) has FUSE passthrough: $got" $([ "$got" = FUSE ] && echo 1 || echo 0)
	else
		echo "INFO frontend: $msg"
		result "auto without /dev/cuse, kernel $(uname -r) without FUSE passthrough: refuses, naming cuse and 6.9" \
			$([ "$got" = failed ] && echo "$msg" | grep -q 'modprobe cuse' && echo "$msg" | grep -q '6\.9' && echo 1 || echo 0)
	fi
	mkdir -p /dev/sub
	got=$(try /dev/sub/netmap /tmp/fe3.log)
	msg=$(grep -m1 'no front end works' /tmp/fe3.log | sed 's/^netmapd[^:]*: [a-z]*: //')
	if [ $passthrough = 1 ]; then
		result "auto where CUSE cannot start (/dev/sub/netmap): falls back to $got" $([ "$got" = FUSE ] && echo 1 || echo 0)
	else
		echo "INFO frontend: $msg"
		result "auto where CUSE cannot start, no FUSE passthrough: refuses with both reasons" \
			$([ "$got" = failed ] && echo "$msg" | grep -q 'CUSE devices live directly under /dev' && echo "$msg" | grep -q '6\.9' && echo 1 || echo 0)
	fi
	grep -h -i 'warn\|error' /tmp/fe*.log | head -6
	finish
fi

# ---- inside the VM: a net suite, or the daemon's refusal where it cannot run
if [ "${1:-}" = --guest-net ]; then
	backend=$2 daemon=$3
	mkdir -p /tmp/fe && rc=0
	timeout 60 "$daemon" --frontend fuse --device /tmp/fe/netmap --run-dir /tmp/fe/run >/tmp/fe/log 2>&1 &
	p=$!
	for _ in $(seq 1 300); do grep -q 'is ready\|failed\|error' /tmp/fe/log && break; sleep 0.1; done
	if grep -q 'is ready' /tmp/fe/log; then
		kill $p; wait $p
		if [ "$backend" = xdp ]; then exec "$repo/Tests/net/run-xdp-tests.sh" "$daemon"; fi
		exec "$repo/Tests/net/run-net-tests.sh" "$daemon"
	fi
	wait $p
	msg=$(grep -m1 -i 'passthrough' /tmp/fe/log)
	cat /tmp/fe/log
	if echo "$msg" | grep -q '6\.9'; then echo "n/a: the net suites use the FUSE file front end: $msg"; exit 0; fi
	echo "not ok - the daemon's FUSE refusal names what is missing: $(tail -1 /tmp/fe/log)"
	exit 1
fi

kernels=${KERNELS:-6.1 6.12 6.12-cloud}
suites=${SUITES:-device frontend net-packet net-xdp bridge-packet bridge-xdp}
out=${OUT:-$repo/build/kernel-matrix}
scratch=${SCRATCH:-.build-kmatrix}
build=1
[ "${1:-}" = --no-build ] && build=0

if [ -n "${NETMAPD:-}" ]; then
	daemon=$(readlink -f "$NETMAPD")
else
	[ "$build" = 0 ] || { swift build --scratch-path "$scratch" --product netmapd && swift build --scratch-path "$scratch" --product netmapctl; } || exit 2
	daemon="$(swift build --scratch-path "$scratch" --show-bin-path)/netmapd"
fi
[ -x "$daemon" ] || { echo "kernel-matrix: no netmapd at $daemon" >&2; exit 2; }
mkdir -p "$out"
inc="-I Sources/ABI/CNetmapABI/include -I tools"
gcc -O2 -g -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden -I Sources/ABI/CNetmapABI/include \
	-o "$out/libnetmapd-shim.so" Sources/Shim/netmapd_shim.c -ldl -pthread || exit 2
for src in Tests/device/nm_*.c; do
	gcc -O2 -g -Wall $inc -o "$out/$(basename "$src" .c)" "$src" -pthread || exit 2
done
for t in Tests/net/pkt_errors.c Tests/net/pkt_peer.c Tests/net/host_bridge.c tools/nmd-bridge.c tools/nmd-send.c tools/nmd-recv.c; do
	gcc -O2 -g -Wall -Wextra -Werror $inc -o "$out/$(basename "$t" .c)" "$t" || exit 2
done

results_init kernel-matrix
declare -A cell=()
logdir=$out/logs
mkdir -p "$logdir"

# run_suite KERNEL SUITE: one VM boot; folds its results in and fills the cell.
run_suite() {
	local k=$1 s=$2 log="$logdir/$1-$2.txt" rc=0 want cmd=() envs=() p f
	case $s in
	device)
		want=$(( $(grep -c . <<<"$(sed -n "/^default_tests='/,/'\$/p" Tests/vm/cuse-device-tests.sh)") + 1 + 1 + 8 ))
		cmd=(env NETMAPD_FRONTEND=auto "$repo/Tests/vm/cuse-device-tests.sh" --guest "$daemon" "$out") ;;
	net-packet|net-xdp)
		want=""
		envs=(-e "NET_COUNT=${NET_COUNT:-20000}" -e "NET_RATE=${NET_RATE:-20000}" -e "NET_RX_FRAMES=4096")
		cmd=("$repo/Tests/vm/kernel-matrix.sh" --guest-net "${s#net-}" "$daemon") ;;
	frontend)
		want=3
		cmd=("$repo/Tests/vm/kernel-matrix.sh" --guest-frontend "$daemon" "$out") ;;
	bridge-packet|bridge-xdp)
		want=8
		envs=(-e "BRIDGE_FRAMES=${BRIDGE_FRAMES:-3000}" -e "BRIDGE_RATE=${BRIDGE_RATE:-500}")
		cmd=("$repo/Tests/vm/bridge-test.sh" --guest "$daemon" "$out" "${s#bridge-}") ;;
	esac
	echo "=== kernel $k: $s"
	rm -rf "$logdir/$k-$s.d"; "$repo/Tests/vm/run-in-vm.sh" --kernel "$k" --timeout "${VM_TIMEOUT:-900}" --results "$logdir/$k-$s.d" "${envs[@]}" -- "${cmd[@]}" >"$log" 2>&1 || rc=$?
	grep -E '^(ok|not ok) - |: [0-9]+ passed, [0-9]+ failed|^n/a|^INFO|^run-in-vm: (command|timed|the VM)|nmd-bridge:|pkt_peer:' "$log" | grep -v '^ok - ' | tail -40
	if grep -q '^n/a: ' "$log" && [ "$rc" = 0 ]; then
		cell[$k,$s]="n/a"
		expect 1
		result "$k $s: not available on this kernel ($(sed -n 's/^n\/a: //p' "$log" | head -1))" 1
		return
	fi
	local before_p=$results_passed before_f=$results_failed
	results_quiet=1 child_results "$k $s" "$rc" "$log" $want || true
	p=$((results_passed - before_p)) f=$((results_failed - before_f))
	if [ "$f" = 0 ]; then cell[$k,$s]="pass $p"; else cell[$k,$s]="FAIL $f/$((p + f))"; fi
	echo "--- kernel $k: $s: ${cell[$k,$s]} (log $log)"
}

# ---- host: the matrix ----------------------------------------------------------
for k in $kernels; do
	NETMAPD_VM_KERNEL=$k "$repo/Tests/vm/run-in-vm.sh" --prepare >/dev/null 2>&1 \
		|| { expect 1; result "kernel $k: fetch and prepare" 0; continue; }
	for s in $suites; do run_suite "$k" "$s"; done
done

echo
printf '| kernel |'; for s in $suites; do printf ' %s |' "$s"; done; echo
printf '|---|'; for s in $suites; do printf -- '---|'; done; echo
for k in $kernels; do
	rel=$(NETMAPD_VM_KERNEL=$k "$repo/Tests/vm/run-in-vm.sh" --print-kernel 2>/dev/null)
	printf '| %s (%s) |' "$k" "$rel"
	for s in $suites; do printf ' %s |' "${cell[$k,$s]:-not run}"; done
	echo
done
echo
finish
