#!/usr/bin/env bash
# The real daemon over CUSE: starts netmapd --frontend cuse inside the test
# VM and runs the project's device test programs (Tests/device/nm_*.c)
# against it, each with LD_PRELOAD=libnetmapd-shim.so. Exits non-zero on any
# failure.
#
#   Tests/vm/cuse-device-tests.sh [--no-build] [--timeout SECONDS]
#
# Environment: SCRATCH (swift scratch path, default .build-cuse), NETMAPD (a
# prebuilt netmapd binary: skips the swift build), OUT (where the shim and
# the C programs are built, default build/cuse-device), NM_TESTS (the test
# command lines, one per line; the default leaves out nm_killer, whose
# "traffic before the kill" check depends on timing that emulation breaks).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
out="${OUT:-$repo/build/cuse-device}"
scratch="${SCRATCH:-.build-cuse}"
default_tests='nm_classic
nm_api14
nm_errors
nm_pipe_rules
nm_pipe_traffic -n 1000000 -m poll
nm_pipe_traffic -n 2000 -m select
nm_pipe_traffic -n 2000 -m epoll
nm_pipe_traffic -n 2000 -m ioctl'

# ---- the part that runs inside the VM ----------------------------------------
if [ "${1:-}" = "--guest" ]; then
	daemon="$2" bin="$3"
	log="$NETMAPD_VM_RESULTS/netmapd.log"
	mkdir -p /run/netmapd
	"$daemon" --frontend cuse --device /dev/netmap --mode 0666 >"$log" 2>&1 &
	pid=$!
	for _ in $(seq 1 300); do
		[ -c /dev/netmap ] && grep -q 'is ready' "$log" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if ! [ -c /dev/netmap ]; then echo "cuse-device-tests: netmapd did not come up"; cat "$log"; exit 1; fi
	passed=0 failed=0
	while IFS= read -r t; do
		[ -n "$t" ] || continue
		s=$(date +%s.%N)
		rc=0
		# shellcheck disable=SC2086 # the line is a command with its arguments
		LD_PRELOAD="$bin/libnetmapd-shim.so" timeout 300 "$bin"/$t >"$NETMAPD_VM_RESULTS/out.txt" 2>&1 || rc=$?
		e=$(date +%s.%N)
		secs=$(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.1f", b - a }')
		if [ "$rc" = 0 ]; then
			passed=$((passed + 1)); echo "ok - $t (${secs} s)"
		else
			failed=$((failed + 1)); echo "not ok - $t: exit $rc (${secs} s)"
			grep -E '^FAIL' "$NETMAPD_VM_RESULTS/out.txt" | head -20 || tail -20 "$NETMAPD_VM_RESULTS/out.txt"
		fi
	done <<<"${NM_TESTS:-$default_tests}"
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	if [ "$rc" = 0 ]; then passed=$((passed + 1)); echo "ok - netmapd stopped cleanly"
	else failed=$((failed + 1)); echo "not ok - netmapd exit $rc"; cat "$log"; fi
	echo "cuse-device-tests: $passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
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
gcc -O2 -g -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden -I Sources/ABI/include \
	-o "$out/libnetmapd-shim.so" Sources/Shim/netmapd_shim.c -ldl -pthread
for src in Tests/device/nm_*.c; do
	gcc -O2 -g -Wall -I Sources/ABI/include -o "$out/$(basename "$src" .c)" "$src" -pthread
done
export NM_TESTS="${NM_TESTS:-$default_tests}"
exec "$repo/Tests/vm/run-in-vm.sh" --timeout "$timeout_s" -e "NM_TESTS=$NM_TESTS" -- \
	"$repo/Tests/vm/cuse-device-tests.sh" --guest "$daemon" "$out"
