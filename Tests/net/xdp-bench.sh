#!/usr/bin/env bash
# xdp-bench.sh: the numbers the native backend's choices rest on, across a
# veth pair (one queue each way) in two fresh namespaces. Not part of the
# test run. Needs root.
#
#   Tests/net/xdp-bench.sh [NETMAPD]     (a release build gives real numbers)
#
#   1. raw AF_XDP receive (Tests/net/xsk_bench.c): frames landing in the
#      buffers vs copied out of socket-owned chunks, daemon-side work only;
#   2. netmap client -> netmapd (AF_XDP TX) against raw AF_XDP TX;
#   3. raw AF_XDP sender -> netmapd (AF_XDP RX) -> netmap client, landing
#      (--xdp-rx-swap) vs copied (the default): the receiving daemon's CPU time per frame (mostly
#      per-sync overhead, which varies with the batch sizes) and the time
#      its rxsync spends per slot filled (the receive path itself).
# Environment: BENCH_COUNT frames per run (1000000); BENCH_PARTS which of
# the three to run (123).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
NETMAPD=${1:-${NETMAPD:-$root/.build-xdp/release/netmapd}}
NETMAPD=$(readlink -f "$NETMAPD")
export NETMAPD NET_BACKEND=xdp
count=${BENCH_COUNT:-1000000}
parts=${BENCH_PARTS:-123}
. "$here/netns-lib.sh"
# AF_XDP pins the region: it must be on tmpfs.
work=$(mktemp -d /dev/shm/netmapd-xdp-bench.XXXXXX)
net_add_cleanup "rm -rf $work"
net_add_cleanup "for m in $work/*/netmap; do umount -l \$m; done"
cc() { gcc -O2 -Wall -Wextra -Werror -I "$root/Sources/ABI/CNetmapABI/include" -I "$root/tools" \
	-I "$root/Sources/Ports/CXDPSys/include" -o "$work/$1" "${@:2}"; }
cc xsk_bench "$here/xsk_bench.c" "$root/Sources/Ports/CXDPSys/nmd_xdp.c" -lxdp -lbpf
cc nmd-send "$root/tools/nmd-send.c"
cc nmd-recv "$root/tools/nmd-recv.c"
net_setup

# CPU seconds (user + system) a process has used.
cpu_of() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

if [[ $parts == *1* ]]; then
echo "== 1. raw AF_XDP RX on $IF_A, sender raw AF_XDP TX on $IF_B =="
for size in 60 60-1514 1514; do
	for mode in land copy; do
		in_a "$work/xsk_bench" rx "$IF_A" 0 $mode 6 $size 2>/dev/null &
		sleep 0.5
		in_b "$work/xsk_bench" tx "$IF_B" 0 "$count" $size >/dev/null
		wait
	done
done

fi

if [[ $parts == *2* ]]; then
echo "== 2. TX: raw AF_XDP vs a netmap client through netmapd =="
net_start_daemon "$NS_B" "$work/b/netmap" "$work/b.log"
PID_B=$NET_DAEMON_PID
for size in 60 60-1514 1514; do
	in_b "$work/xsk_bench" tx "$IF_B" 0 "$count" $size
	c0=$(cpu_of $PID_B)
	"$work/nmd-send" -d "$work/b/netmap" -i "$IF_B" -n "$count" -l $size -q
	c1=$(cpu_of $PID_B)
	echo "   netmapd CPU: $(awk -v a=$c0 -v b=$c1 -v n=$count 'BEGIN { printf "%.0f", (b - a) / n * 1e9 }') ns per frame"
done
net_stop_daemon $PID_B

fi

if [[ $parts == *3* ]]; then
echo "== 3. RX through netmapd: frames landing in the netmap buffers vs copied =="
for opt in --xdp-rx-swap ""; do
	net_start_daemon "$NS_A" "$work/a/netmap" "$work/a.log" -v --xdp-rx-frames 32768 $opt
	PID_A=$NET_DAEMON_PID
	for size in 60 60-1514 1514; do
		"$work/nmd-recv" -d "$work/a/netmap" -i "$IF_A" -l $size -T 2 -W 10 >"$work/rx.out" 2>"$work/rx.err" &
		rp=$!
		for i in $(seq 50); do grep -q ready "$work/rx.err" && break; sleep 0.1; done
		c0=$(cpu_of $PID_A)
		in_b "$work/xsk_bench" tx "$IF_B" 0 "$count" $size >/dev/null
		wait $rp || true
		c1=$(cpu_of $PID_A)
		frames=$(sed -n 's/^nmd-recv: \([0-9]*\) frames.*/\1/p' "$work/rx.out")
		echo "   ${opt:-land} $size: $(cut -d';' -f1 "$work/rx.out" | sed 's/^nmd-recv: //'); lost $(sed -n 's/.*lost \([0-9]*\).*/\1/p' "$work/rx.out"); netmapd CPU $(awk -v a=$c0 -v b=$c1 -v n=${frames:-1} 'BEGIN { printf "%.0f", (b - a) / n * 1e9 }') ns per frame"
	done
	sleep 0.5
	grep -h -E 'dropped by the kernel|ns per slot in rxsync' "$work/a.log" | sed 's/^netmapd\[[0-9]*\]: [a-z]*: /   /' || true
	net_stop_daemon $PID_A
done
fi
