#!/usr/bin/env bash
# CUSE front end smoke test: builds the probe daemon (CUSEProbe: the CUSE
# front end over a fake device), the mmap shim and the C client on the host,
# then runs them inside the test VM (Tests/vm/run-in-vm.sh), where the Debian
# kernel has CUSE. Ends with "cuse-smoke: N passed, M failed" and exits
# non-zero on any failure, when the VM run fails, or when fewer results than
# expected come back (Tests/lib/results.sh).
#
#   Tests/vm/cuse-smoke.sh [--no-build] [--timeout SECONDS]
#
# Environment: SCRATCH (swift scratch path, default .build-cuse),
# CUSE_PROBE (a prebuilt CUSEProbe binary: skips the swift build),
# OUT (where the shim and the client are built, default build/cuse-smoke).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
. "$repo/Tests/lib/results.sh"
# Results of the guest; each step needs the one before, so the first failure
# ends the run (and the missing results count as failed).
GUEST_RESULTS=9
out="${OUT:-$repo/build/cuse-smoke}"
scratch="${SCRATCH:-.build-cuse}"

# ---- the part that runs inside the VM ----------------------------------------
if [ "${1:-}" = "--guest" ]; then
	probe="$2" shim="$3" client="$4"
	log="$NETMAPD_VM_RESULTS/probe.log"
	results_init guest
	expect $GUEST_RESULTS
	fail() { result "$1" 0 "${2:-}"; echo "---- probe log ----"; cat "$log"; finish; }
	pass() { result "$1" 1; }
	t0=$(date +%s.%N)
	"$probe" --name netmap --region /tmp/cuse-probe-region --mode 0666 >"$log" 2>&1 &
	probe_pid=$!
	for _ in $(seq 1 300); do
		[ -c /dev/netmap ] && grep -q 'ready:' "$log" && break
		kill -0 "$probe_pid" 2>/dev/null || fail "/dev/netmap appears" "the probe exited early"
		sleep 0.1
	done
	[ -c /dev/netmap ] || fail "/dev/netmap appears"
	t1=$(date +%s.%N)
	pass "/dev/netmap up after $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s: $(ls -l /dev/netmap)"
	[ "$(stat -c %a /dev/netmap)" = 666 ] || fail "device mode 666" "it is $(stat -c %a /dev/netmap)"
	pass "device mode 666"

	LD_PRELOAD="$shim" "$client" || fail "cuse_smoke (with the shim)"
	pass "cuse_smoke (with the shim)"
	"$client" --no-shim || fail "cuse_smoke --no-shim"
	pass "cuse_smoke --no-shim"
	hints=$(grep -c 'hint:' "$log" || true)
	grep -q 'hint: process .* LD_PRELOAD=libnetmapd-shim.so' "$log" && [ "$hints" = 1 ] \
		|| fail "exactly one missing-shim hint in the probe log (the --no-shim client)" "got $hints"
	pass "exactly one missing-shim hint in the probe log (the --no-shim client)"

	# Stop with a file still open: the front end releases it itself.
	exec 3<>/dev/netmap
	kill -TERM "$probe_pid"
	rc=0
	wait "$probe_pid" || rc=$?
	exec 3>&-
	[ "$rc" = 0 ] || fail "the probe exits 0 after SIGTERM" "exit $rc"
	pass "the probe exits 0 after SIGTERM"
	grep -q 'removed (1 open file(s) released)' "$log" || fail "the open file is released at stop"
	pass "the open file is released at stop"
	grep -q 'stopped: live 0 ' "$log" || fail "no file left open at stop"
	pass "no file left open at stop"
	for _ in $(seq 1 50); do [ -e /dev/netmap ] || break; sleep 0.1; done
	[ ! -e /dev/netmap ] || fail "/dev/netmap gone after the probe stopped"
	pass "/dev/netmap gone after the probe stopped"
	t2=$(date +%s.%N)
	echo "cuse-smoke: guest tests took $(awk -v a="$t0" -v b="$t2" 'BEGIN{printf "%.1f", b-a}') s"
	echo "---- probe log ----"
	cat "$log"
	finish
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
	gcc -O2 -g -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden -I Sources/ABI/CNetmapABI/include \
		-o "$out/libnetmapd-shim.so" Sources/Shim/netmapd_shim.c -ldl -pthread
	gcc -O2 -g -Wall -Wextra -Werror -I Sources/ABI/CNetmapABI/include -o "$out/cuse_smoke" Tests/device/cuse_smoke.c -pthread
fi
built=$(date +%s.%N)

results_init cuse-smoke
vm_out=$(mktemp /tmp/netmapd-cuse-smoke.XXXXXX)
trap 'rm -f "$vm_out"' EXIT
rc=0
"$repo/Tests/vm/run-in-vm.sh" --timeout "$timeout_s" -- \
	"$repo/Tests/vm/cuse-smoke.sh" --guest "$probe" "$out/libnetmapd-shim.so" "$out/cuse_smoke" 2>&1 | tee "$vm_out" \
	|| rc=${PIPESTATUS[0]}
end=$(date +%s.%N)
awk -v a="$start" -v b="$built" -v c="$end" 'BEGIN { printf "cuse-smoke: build %.1f s, VM %.1f s\n", b - a, c - b }'
results_quiet=1 child_results "" "$rc" "$vm_out" $GUEST_RESULTS || true
finish
