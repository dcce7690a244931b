#!/usr/bin/env bash
# demo.sh: netmapd serving real interfaces. Makes two network namespaces
# joined by a veth pair (think of them as two containers), starts one
# netmapd in this (the host's) namespace (generic AF_PACKET backend,
# FUSE-file device), sends frames with tools/nmd-send from a program in one
# namespace and receives and checks them with tools/nmd-recv in the other:
# each names its own namespace's interface, and the one daemon looks each
# name up where its caller lives. Prints what moved, then removes
# everything again.
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
	gcc -O2 -Wall -Wextra -I "$root/Sources/ABI/CNetmapABI/include" -o "$work/nmd-$t" "$root/tools/nmd-$t.c"
done

net_setup
echo "demo: namespace $NS_A ($IF_A) <-> namespace $NS_B ($IF_B), a veth pair"
net_start_daemon "" "$work/d/netmap" "$work/d.log"
echo "demo: one netmapd in the host's namespace serves both on $work/d/netmap"

in_b "$work/nmd-recv" -d "$work/d/netmap" -i "netmap:$IF_B" -n "$count" -l "$sizes" -T 3 >"$work/recv.out" 2>"$work/recv.err" &
rp=$!
for _ in $(seq 100); do grep -q ready "$work/recv.err" && break; sleep 0.1; done
echo "demo: from $NS_A, sending $count frames of $sizes bytes on netmap:$IF_A; receiving in $NS_B on netmap:$IF_B"
in_a "$work/nmd-send" -d "$work/d/netmap" -i "netmap:$IF_A" -n "$count" -l "$sizes" -R "$rate"
rc=0
wait $rp || rc=$?
cat "$work/recv.out"
if [ $rc = 0 ]; then
	echo "demo: every frame arrived, byte for byte"
else
	echo "demo: the receiver saw losses or errors (exit $rc); frames a receiver cannot take in time are dropped, as with netmap: try DEMO_RATE=200000"
fi
exit $rc
