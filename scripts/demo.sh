#!/usr/bin/env bash
# demo.sh: netmapd serving real interfaces. Makes two network namespaces
# joined by a veth pair, starts a netmapd in each (generic AF_PACKET
# backend, FUSE-file device), sends frames with tools/nmd-send on one side
# and receives and checks them with tools/nmd-recv on the other, prints
# what moved, then removes everything again.
#
#   scripts/demo.sh [NETMAPD]
#
# Environment: DEMO_COUNT (frames, 1000000), DEMO_SIZES (60-1514),
# DEMO_RATE (frames/s, 0 = as fast as it goes). Needs root.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
count=${DEMO_COUNT:-1000000}
sizes=${DEMO_SIZES:-60-1514}
rate=${DEMO_RATE:-0}

[ "$(id -u)" = 0 ] || { echo "demo: needs root" >&2; exit 1; }
NETMAPD=${1:-${NETMAPD:-}}
if [ -z "$NETMAPD" ]; then
	swift build --package-path "$root" --scratch-path "$root/.build-pkt" --product netmapd >&2
	NETMAPD=$(swift build --package-path "$root" --scratch-path "$root/.build-pkt" --show-bin-path)/netmapd
fi
NETMAPD=$(readlink -f "$NETMAPD")

. "$root/Tests/net/netns-lib.sh"
work=$(mktemp -d /tmp/netmapd-demo.XXXXXX)
net_add_cleanup "rm -rf $work"
net_add_cleanup "for m in $work/*/netmap; do umount -l \$m; done"
for t in send recv; do
	gcc -O2 -Wall -Wextra -I "$root/Sources/ABI/include" -o "$work/nmd-$t" "$root/tools/nmd-$t.c"
done

net_setup
echo "demo: namespace $NS_A ($IF_A) <-> namespace $NS_B ($IF_B), a veth pair"
net_start_daemon "$NS_A" "$work/a/netmap" "$work/a.log"
net_start_daemon "$NS_B" "$work/b/netmap" "$work/b.log"
echo "demo: netmapd serving $NS_A's interfaces on $work/a/netmap, $NS_B's on $work/b/netmap"

"$work/nmd-recv" -d "$work/b/netmap" -i "netmap:$IF_B" -n "$count" -l "$sizes" -T 3 >"$work/recv.out" 2>"$work/recv.err" &
rp=$!
for _ in $(seq 100); do grep -q ready "$work/recv.err" && break; sleep 0.1; done
echo "demo: sending $count frames of $sizes bytes from netmap:$IF_A to netmap:$IF_B"
"$work/nmd-send" -d "$work/a/netmap" -i "netmap:$IF_A" -n "$count" -l "$sizes" -R "$rate"
rc=0
wait $rp || rc=$?
cat "$work/recv.out"
if [ $rc = 0 ]; then
	echo "demo: every frame arrived, byte for byte"
else
	echo "demo: the receiver saw losses or errors (exit $rc); frames a receiver cannot take in time are dropped, as with netmap: try DEMO_RATE=200000"
fi
exit $rc
