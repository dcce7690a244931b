#!/usr/bin/env bash
# pkt-bench.sh: runs Tests/net/pkt_bench.c across a veth pair in two fresh
# namespaces and prints the numbers PacketPort's choices rest on. Not part of
# the test run. Needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/netns-lib.sh"
work=$(mktemp -d /tmp/netmapd-pkt-bench.XXXXXX)
net_add_cleanup "rm -rf $work"
gcc -O2 -Wall -Wextra -I "$here/../../Sources/ABI/CNetmapABI/include" -I "$here/../../tools" -o "$work/pkt_bench" "$here/pkt_bench.c"
net_setup
secs=${BENCH_SECS:-2}
b=$work/pkt_bench

echo "== TX into the veth (nothing listens on the far side) =="
for size in 60 1514; do
	for mode in mmsg mmsg-bypass ring ring-bypass; do
		in_a "$b" tx "$IF_A" $mode $size "$secs"
	done
done

echo "== RX drain while the far side sends 60-byte frames with sendmmsg =="
for mode in v2 v3 mmsg v2-mit v3-mit mmsg-mit; do
	in_a "$b" tx "$IF_A" mmsg 60 $((secs + 2)) >/dev/null &
	sleep 0.3
	in_b "$b" rx "$IF_B" $mode "$secs"
	wait
done

echo "== wake-up latency: one 60-byte frame every 200 us, sender -> receiver =="
for tx in mmsg ring; do
	for mode in v2 v3 v3-8ms mmsg; do
		in_b "$b" lat-rx "$IF_B" $mode 5000 &
		sleep 0.3
		in_a "$b" lat-tx "$IF_A" $tx 5000 200
		wait
		echo "   (sender: $tx)"
	done
done
