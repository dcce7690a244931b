#!/usr/bin/env bash
# fuse-smoke.sh: the FUSE-file front end through a real mounted file, against
# the fake device of Tests/FUSEProbe. Needs root, /dev/fuse and a kernel with
# FUSE passthrough (6.9+). Ends with "fuse-smoke: N passed, M failed" and
# exits non-zero on any failure or when fewer results than expected arrived.
#
#   Tests/device/fuse-smoke.sh
#
# Environment:
#   FUSE_PROBE         a built FUSEProbe binary (default: build it with
#                      swift build --scratch-path .build-fuse --product FUSEProbe)
#   FUSE_BENCH_COUNT   NIOCTXSYNC calls in the round-trip benchmark (100000)
#   FUSE_THREADS       worker threads of the front end (2)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
count=${FUSE_BENCH_COUNT:-100000}
threads=${FUSE_THREADS:-2}
region_size=$((4 << 20))

. "$root/Tests/lib/results.sh"
results_init fuse-smoke
expect 5
[ "$(id -u)" = 0 ] || { result "run as root" 0; finish; }
[ -c /dev/fuse ] || { result "/dev/fuse exists" 0; finish; }

work=$(mktemp -d /tmp/netmapd-fuse-smoke.XXXXXX)
path=$work/mnt/netmap
probe_pid=
hold_pid=
cleanup() {
	[ -n "$hold_pid" ] && kill "$hold_pid" 2>/dev/null || true
	if [ -n "$probe_pid" ] && kill -0 "$probe_pid" 2>/dev/null; then
		kill -TERM "$probe_pid" 2>/dev/null || true
		sleep 1
		kill -KILL "$probe_pid" 2>/dev/null || true
	fi
	if grep -q " $path " /proc/mounts 2>/dev/null; then umount -l "$path" || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

# --- build ---
if [ -z "${FUSE_PROBE:-}" ]; then
	echo "fuse-smoke: building FUSEProbe"
	swift build --package-path "$root" --scratch-path "$root/.build-fuse" --product FUSEProbe >&2
	FUSE_PROBE=$(swift build --package-path "$root" --scratch-path "$root/.build-fuse" --show-bin-path)/FUSEProbe
fi
gcc -O2 -Wall -Wextra -Werror -I "$root/Sources/ABI/CNetmapABI/include" "$root/Tests/device/fuse_smoke.c" \
	-o "$work/fuse_smoke" -lpthread

# --- start the front end ---
"$FUSE_PROBE" "$path" "$threads" >"$work/probe.log" 2>&1 &
probe_pid=$!
for _ in $(seq 300); do
	grep -q '^READY ' "$work/probe.log" && break
	kill -0 "$probe_pid" 2>/dev/null || break
	sleep 0.1
done
if ! grep -q '^READY ' "$work/probe.log"; then
	cat "$work/probe.log" >&2
	result "FUSEProbe comes up" 0
	finish
fi

# --- functional checks ---
check "fuse_smoke test: the functional checks through the mounted file" "$work/fuse_smoke" test "$path" "$region_size" || true

# --- round trip ---
check "fuse_smoke bench: $count NIOCTXSYNC round trips" "$work/fuse_smoke" bench "$path" "$count" || true

# --- a client holding the file across stop ---
mkfifo "$work/hold.in"
"$work/fuse_smoke" hold "$path" <"$work/hold.in" >"$work/hold.out" 2>&1 &
hold_pid=$!
exec 3>"$work/hold.in"
for _ in $(seq 100); do grep -q '^held' "$work/hold.out" && break; sleep 0.05; done

# --- stop: the probe checks releases and the removed file ---
kill -TERM "$probe_pid"
stopped=0
for _ in $(seq 200); do
	if ! kill -0 "$probe_pid" 2>/dev/null; then stopped=1; break; fi
	sleep 0.05
done
probe_rc=1
if [ "$stopped" = 1 ]; then
	wait "$probe_pid" && probe_rc=0 || probe_rc=$?
fi
probe_pid=
cat "$work/probe.log"
result "probe: stopped within 10 s, releases exact, file removed" $([ "$probe_rc" = 0 ] && echo 1 || echo 0) \
	"$([ "$stopped" = 1 ] && echo "exit $probe_rc" || echo "still running after 10 s")"

echo go >&3
exec 3>&-
hold_rc=0
wait "$hold_pid" || hold_rc=$?
hold_pid=
cat "$work/hold.out"
result "client holding the file gets ENOTCONN/ENODEV after stop" $([ "$hold_rc" = 0 ] && echo 1 || echo 0) "exit $hold_rc"

left=0
grep -q " $path " /proc/mounts || [ -e "$path" ] && left=1
result "nothing left at $path" $((1 - left)) "mount or file left"

finish
