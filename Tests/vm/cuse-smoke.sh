#!/usr/bin/env bash
# CUSE front end smoke test: builds the probe daemon (CUSEProbe: the CUSE
# front end over a fake device), the mmap shim and the C client on the host,
# then runs them inside the test VM (Tests/vm/run-in-vm.sh), where the Debian
# kernel has CUSE. Exits non-zero on any failure.
#
#   Tests/vm/cuse-smoke.sh [--no-build] [--timeout SECONDS]
#
# Environment: SCRATCH (swift scratch path, default .build-cuse),
# CUSE_PROBE (a prebuilt CUSEProbe binary: skips the swift build),
# OUT (where the shim and the client are built, default build/cuse-smoke).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
out="${OUT:-$repo/build/cuse-smoke}"
scratch="${SCRATCH:-.build-cuse}"

# ---- the part that runs inside the VM ----------------------------------------
if [ "${1:-}" = "--guest" ]; then
	probe="$2" shim="$3" client="$4"
	log="$NETMAPD_VM_RESULTS/probe.log"
	fail() { echo "cuse-smoke: FAIL: $*"; echo "---- probe log ----"; cat "$log"; exit 1; }
	t0=$(date +%s.%N)
	"$probe" --name netmap --region /tmp/cuse-probe-region --mode 0666 >"$log" 2>&1 &
	probe_pid=$!
	for _ in $(seq 1 300); do
		[ -c /dev/netmap ] && grep -q 'ready:' "$log" && break
		kill -0 "$probe_pid" 2>/dev/null || fail "the probe exited early"
		sleep 0.1
	done
	[ -c /dev/netmap ] || fail "/dev/netmap did not appear"
	t1=$(date +%s.%N)
	echo "cuse-smoke: /dev/netmap up after $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s: $(ls -l /dev/netmap)"
	[ "$(stat -c %a /dev/netmap)" = 666 ] || fail "device mode is $(stat -c %a /dev/netmap), not 666"

	LD_PRELOAD="$shim" "$client" || fail "cuse_smoke (with the shim)"
	"$client" --no-shim || fail "cuse_smoke --no-shim"
	grep -q 'hint: process .* LD_PRELOAD=libnetmapd-shim.so' "$log" || fail "no missing-shim hint in the probe log"
	hints=$(grep -c 'hint:' "$log" || true)
	[ "$hints" = 1 ] || fail "expected exactly one hint (the --no-shim client), got $hints"

	# Stop with a file still open: the front end releases it itself.
	exec 3<>/dev/netmap
	kill -TERM "$probe_pid"
	rc=0
	wait "$probe_pid" || rc=$?
	exec 3>&-
	[ "$rc" = 0 ] || fail "the probe exited $rc after SIGTERM"
	grep -q 'removed (1 open file(s) released)' "$log" || fail "the open file was not released at stop"
	grep -q 'stopped: live 0 ' "$log" || fail "files left open at stop"
	for _ in $(seq 1 50); do [ -e /dev/netmap ] || break; sleep 0.1; done
	[ ! -e /dev/netmap ] || fail "/dev/netmap still there after the probe stopped"
	t2=$(date +%s.%N)
	echo "cuse-smoke: guest tests took $(awk -v a="$t0" -v b="$t2" 'BEGIN{printf "%.1f", b-a}') s"
	echo "---- probe log ----"
	cat "$log"
	echo "cuse-smoke: PASS"
	exit 0
fi

# ---- host: build, then boot ---------------------------------------------------
build=1
timeout_s=300
while [ $# -gt 0 ]; do
	case "$1" in
	--no-build) build=0; shift ;;
	--timeout) timeout_s="$2"; shift 2 ;;
	*) echo "usage: $0 [--no-build] [--timeout SECONDS]" >&2; exit 2 ;;
	esac
done

start=$(date +%s.%N)
if ! dpkg -s libfuse3-dev >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libfuse3-dev >&2 \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libfuse3-dev >&2; }
fi
mkdir -p "$out"
if [ -n "${CUSE_PROBE:-}" ]; then
	probe="$CUSE_PROBE"
else
	if [ "$build" = 1 ]; then
		swift build --scratch-path "$scratch" --product CUSEProbe
	fi
	probe="$(swift build --scratch-path "$scratch" --show-bin-path)/CUSEProbe"
fi
[ -x "$probe" ] || { echo "cuse-smoke: no probe binary at $probe" >&2; exit 2; }
if [ "$build" = 1 ] || [ ! -f "$out/libnetmapd-shim.so" ] || [ ! -x "$out/cuse_smoke" ]; then
	gcc -O2 -g -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden -I Sources/ABI/include \
		-o "$out/libnetmapd-shim.so" Sources/Shim/netmapd_shim.c -ldl -pthread
	gcc -O2 -g -Wall -Wextra -Werror -I Sources/ABI/include -o "$out/cuse_smoke" Tests/device/cuse_smoke.c -pthread
fi
built=$(date +%s.%N)

rc=0
"$repo/Tests/vm/run-in-vm.sh" --timeout "$timeout_s" -- \
	"$repo/Tests/vm/cuse-smoke.sh" --guest "$probe" "$out/libnetmapd-shim.so" "$out/cuse_smoke" || rc=$?
end=$(date +%s.%N)
awk -v a="$start" -v b="$built" -v c="$end" -v rc="$rc" \
	'BEGIN { printf "cuse-smoke: %s (build %.1f s, VM %.1f s)\n", rc == 0 ? "passed" : "FAILED", b - a, c - b }'
exit "$rc"
