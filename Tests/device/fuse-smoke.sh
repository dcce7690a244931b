#!/usr/bin/env bash
# fuse-smoke.sh: the FUSE-file front end through a real mounted file, against
# the fake device of Tests/FUSEProbe. Needs root, /dev/fuse and a kernel with
# FUSE passthrough (6.9+). Exits non-zero on any failure.
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

[ "$(id -u)" = 0 ] || { echo "fuse-smoke: needs root" >&2; exit 1; }
[ -c /dev/fuse ] || { echo "fuse-smoke: no /dev/fuse" >&2; exit 1; }

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
gcc -O2 -Wall -Wextra -Werror -I "$root/Sources/ABI/include" "$root/Tests/device/fuse_smoke.c" \
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
	echo "fuse-smoke: FUSEProbe did not come up" >&2
	cat "$work/probe.log" >&2
	exit 1
fi

failures=0
steps=0

# --- functional checks ---
steps=$((steps + 1))
if ! "$work/fuse_smoke" test "$path" "$region_size"; then
	failures=$((failures + 1))
fi

# --- round trip ---
steps=$((steps + 1))
if ! "$work/fuse_smoke" bench "$path" "$count"; then
	failures=$((failures + 1))
fi

# --- a client holding the file across stop ---
mkfifo "$work/hold.in"
"$work/fuse_smoke" hold "$path" <"$work/hold.in" >"$work/hold.out" 2>&1 &
hold_pid=$!
exec 3>"$work/hold.in"
for _ in $(seq 100); do grep -q '^held' "$work/hold.out" && break; sleep 0.05; done

# --- stop: the probe checks releases and the removed file ---
steps=$((steps + 3))
kill -TERM "$probe_pid"
stopped=0
for _ in $(seq 200); do
	if ! kill -0 "$probe_pid" 2>/dev/null; then stopped=1; break; fi
	sleep 0.05
done
probe_rc=1
if [ "$stopped" = 1 ]; then
	wait "$probe_pid" && probe_rc=0 || probe_rc=$?
else
	echo "not ok - front end stopped within 10 s"
fi
probe_pid=
cat "$work/probe.log"
if [ "$probe_rc" = 0 ]; then echo "ok - probe: releases exact, file removed"; else
	echo "not ok - probe exit $probe_rc"; failures=$((failures + 1)); fi

echo go >&3
exec 3>&-
hold_rc=0
wait "$hold_pid" || hold_rc=$?
hold_pid=
cat "$work/hold.out"
if [ "$hold_rc" = 0 ]; then echo "ok - client holding the file gets ENOTCONN/ENODEV after stop"; else
	echo "not ok - client holding the file after stop"; failures=$((failures + 1)); fi

if grep -q " $path " /proc/mounts || [ -e "$path" ]; then
	echo "not ok - mount or file left at $path"; failures=$((failures + 1))
else
	echo "ok - nothing left at $path"
fi

echo "fuse-smoke: $((steps - failures)) passed, $failures failed"
exit $((failures == 0 ? 0 : 1))
