#!/usr/bin/env bash
# The real netmapd under sanitizers, with real traffic (issue #18). Where
# scripts/test-tsan.sh and test-asan.sh run the Swift test suite (the engine
# through the in-process front end), this builds the daemon itself with
# ThreadSanitizer or AddressSanitizer (+LeakSanitizer), its C modules
# (CXDPSys, CPacketSys, CFUSEKernel, CNetmapSys, the ABI) with the same
# -fsanitize flag plus UndefinedBehaviorSanitizer (-Xcc -fsanitize=undefined:
# swiftc itself has no UBSan on Linux), and the CUSE shim with UBSan, and
# runs against each daemon:
#   device   Tests/device/run-host.sh (FUSE-file front end; every client with
#            the UBSan shim preloaded: on a FUSE file it passes mmap through,
#            but its munmap and fork bookkeeping run in every program)
#   xdp      Tests/net/run-xdp-tests.sh (AF_XDP, veth pairs in namespaces)
#   packet   Tests/net/run-net-tests.sh (AF_PACKET)
#   soak     Tests/soak/soak.sh for SOAK_MINUTES (default 2: the soak wants
#            memory flat after a warm-up of a third of the run, and a
#            sanitizer's own bookkeeping needs about 40 s to level off)
# Every sanitized process writes its reports to a log directory (log_path);
# a stage fails if its tests fail or if any report is there: a data race,
# a memory error, a leak at the daemon's exit, undefined behaviour.
# Suppressions (scripts/sanitizer/*.supp) are only for reports shown to be
# in third-party code, each with its reason.
#
#   scripts/test-daemon-sanitized.sh [tsan|asan]... [-- STAGE...]
#
# Default: tsan and asan, every stage. `make test-daemon-sanitized` runs that;
# `make test` runs `tsan -- device xdp` with SAN_CI=1 (smaller counts).
#
# Environment:
#   SAN_CI=1        CI sizes: fewer frames and SIGKILL runs (below)
#   SAN_LOGS        where the reports go (default: a new /tmp/netmapd-san.*;
#                   kept when something failed)
#   SOAK_MINUTES    soak length (default 2)
#   TRAFFIC_FRAMES, KILLER_RUNS, FAULT_FRAMES, NET_COUNT, NET_RATE,
#   NMT_TIME_SCALE  passed on to the stages; the defaults here are smaller
#                   counts, a slower pace and longer time limits than the
#                   stages' own (a sanitized debug daemon is 5-20x slower)
# Needs root (as the stages do). Exits non-zero if any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH=/opt/swift/usr/bin:$PATH

sans=()
stages=()
while [ $# -gt 0 ]; do
	case $1 in
	tsan|asan) sans+=("$1") ;;
	--) shift; stages=("$@"); break ;;
	*) echo "usage: $0 [tsan|asan]... [-- device|xdp|packet|soak...]" >&2; exit 2 ;;
	esac
	shift
done
[ ${#sans[@]} -gt 0 ] || sans=(tsan asan)
[ ${#stages[@]} -gt 0 ] || stages=(device xdp packet soak)

# Counts: the stages' own defaults are sized for a release-speed daemon.
# The checks stay the same (every frame accounted for, byte-exact), only
# fewer frames, a slower pace and fewer SIGKILL runs.
if [ "${SAN_CI:-0}" = 1 ]; then
	: "${TRAFFIC_FRAMES:=100000}" "${KILLER_RUNS:=10}" "${FAULT_FRAMES:=10000}" "${NET_COUNT:=50000}"
else
	: "${TRAFFIC_FRAMES:=200000}" "${KILLER_RUNS:=30}" "${FAULT_FRAMES:=20000}" "${NET_COUNT:=100000}"
fi
# The device programs' time limits (wake-up latency, waits for the pool)
# stretched by NMT_TIME_SCALE; the pace of the net transfers lowered so
# that a stalled sanitized daemon does not overflow the kernel's RX ring.
: "${NET_RATE:=20000}" "${SOAK_MINUTES:=2}" "${NMT_TIME_SCALE:=4}"
export TRAFFIC_FRAMES KILLER_RUNS FAULT_FRAMES NET_COUNT NET_RATE SOAK_MINUTES NMT_TIME_SCALE

logs=${SAN_LOGS:-$(mktemp -d /tmp/netmapd-san.XXXXXX)}
mkdir -p "$logs"
export SWIFT_BACKTRACE=enable=no   # let the sanitizer report crashes
supp=$root/scripts/sanitizer
passed=0
failed=0
failures=()

# Sanitizer reports in DIR (one file per process), shown and counted.
reports() {
	local dir=$1 n=0 f
	for f in "$dir"/san.*; do
		[ -e "$f" ] || continue
		if grep -qE 'WARNING: ThreadSanitizer|ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' "$f"; then
			n=$((n + 1))
			echo "---- $f"
			# Each report's header and first frames; the whole file stays in $dir.
			awk '/^(WARNING|==[0-9]+==ERROR|SUMMARY)|runtime error:/ { c = 40 } c-- > 0' "$f" | head -150
		fi
	done
	return $n
}

for san in "${sans[@]}"; do
	scratch=.build-daemon-$san
	echo "== $san: building netmapd and netmapctl (swift build --sanitize=$([ $san = tsan ] && echo thread || echo address) -Xcc -fsanitize=undefined, scratch $scratch)"
	t0=$SECONDS
	flags=(--sanitize=$([ $san = tsan ] && echo thread || echo address) -Xcc -fsanitize=undefined --scratch-path "$scratch")
	# ld.gold warns once per ASan helper symbol; nothing to act on.
	build() { swift build "${flags[@]}" --product "$1" 2>&1 | grep -v "Cannot export local symbol"; return "${PIPESTATUS[0]}"; }
	if ! build netmapd || ! build netmapctl; then
		failed=$((failed + 1)); failures+=("$san: build"); continue
	fi
	bin=$(swift build "${flags[@]}" --show-bin-path)
	shim=$root/$scratch/shim-ubsan/libnetmapd-shim.so
	mkdir -p "$(dirname "$shim")"
	gcc -O1 -g -Wall -Wextra -Werror -fsanitize=undefined -fPIC -shared \
		-fvisibility=hidden -I Sources/ABI/CNetmapABI/include -o "$shim" Sources/Shim/netmapd_shim.c -ldl -pthread ||
		{ failed=$((failed + 1)); failures+=("$san: shim build"); continue; }
	echo "== $san: built in $((SECONDS - t0)) s"

	for stage in "${stages[@]}"; do
		dir=$logs/$san-$stage
		mkdir -p "$dir"
		common="log_path=$dir/san"
		if [ $san = tsan ]; then
			export TSAN_OPTIONS="$common:halt_on_error=0:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
			unset ASAN_OPTIONS LSAN_OPTIONS
		else
			export ASAN_OPTIONS="$common:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1"
			# The soak wants the daemon's memory flat after its warm-up: a
			# quarantine of freed memory (256 MiB by default) that fills for
			# minutes would read as growth. 16 MiB fills within the warm-up.
			[ $stage = soak ] && ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=16"
			export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
			unset TSAN_OPTIONS
		fi
		export UBSAN_OPTIONS="$common:print_stacktrace=1"
		echo "== $san: $stage (reports in $dir)"
		t0=$SECONDS
		case $stage in
		device) NETMAPD_BIN=$bin/netmapd NETMAPD_SHIM=$shim Tests/device/run-host.sh ;;
		xdp) Tests/net/run-xdp-tests.sh "$bin/netmapd" ;;
		packet) Tests/net/run-net-tests.sh "$bin/netmapd" ;;
		soak) NETMAPCTL=$bin/netmapctl Tests/soak/soak.sh "$bin/netmapd" ;;
		*) echo "unknown stage $stage" >&2; false ;;
		esac
		rc=$?
		reports "$dir"
		n=$?
		what="$san $stage ($((SECONDS - t0)) s)"
		if [ $rc = 0 ] && [ $n = 0 ]; then
			passed=$((passed + 1))
			echo "== $what: ok"
		else
			failed=$((failed + 1))
			failures+=("$what: tests exit $rc, $n process(es) with sanitizer reports")
			echo "== $what: FAILED (tests exit $rc, $n process(es) with sanitizer reports)"
		fi
	done
done
unset TSAN_OPTIONS ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS

for f in "${failures[@]}"; do echo "test-daemon-sanitized: failed: $f"; done
if [ $failed = 0 ] && [ -z "${SAN_LOGS:-}" ]; then rm -rf "$logs"; else echo "test-daemon-sanitized: logs in $logs"; fi
echo "test-daemon-sanitized: $passed passed, $failed failed"
[ $failed = 0 ]
