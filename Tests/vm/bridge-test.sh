#!/usr/bin/env bash
# A zero-copy netmap bridge between two veth pairs, the way a user first
# tries netmapd (issue #21): inside the VM, netmapd with --frontend auto and
# the given backend; namespaces S, W and R; veth pairs S/gs0 <-> W/ga0 and
# W/gb0 <-> R/gr0. tools/nmd-bridge (buffer swaps, NS_BUF_CHANGED, poll) runs
# in W between ga0 and gb0; a plain AF_PACKET socket (Tests/net/pkt_peer)
# sends from S and another receives in R. Checks, per backend:
#   - every frame arrives in R byte-exact, and the bridge's TX rings drain
#     (no slot left uncompleted: the 6.1 AF_XDP stall of issue #21);
#   - the same in the other direction (R -> S);
#   - the host stack of W does not see what the bridge gets (the ingress
#     steal: the packet backend's tc filter, which needs sch_ingress and
#     cls_bpf loaded; the xdp backend's redirect): a ping from S to W's
#     address on ga0 gets no answer, and the daemon log has no "the stack
#     sees them too"; once the bridge is gone W answers again;
#   - the outgoing link without a carrier (R's end down) while the bridge
#     forwards into it: once the carrier is back, no TX slot is left
#     uncompleted (Linux 6.1's AF_XDP keeps such transmissions until then,
#     newer kernels and AF_PACKET drop them: the 6.1 "TX stall" of #21);
#   - host rings (issue #13) through this front end: Tests/net/host_bridge.c
#     between W's ga0 and W's host stack (NIC rings <-> host rings, buffer
#     swaps): a ping from S to W's address is answered through it, and once
#     it is gone no netmapd filter is left on ga0;
#   - netmapd stops cleanly.
#
#   Tests/vm/bridge-test.sh --guest DAEMON BIN BACKEND   (inside the VM)
#
# Environment: BRIDGE_FRAMES (default 3000) frames per direction,
# BRIDGE_RATE (default 500) sender pace in frames/s (emulation is slow).
# Results: 8 per backend.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$repo/Tests/lib/results.sh"
. "$repo/Tests/lib/daemon.sh"

bridge_results=8
[ "${1:-}" = "--guest" ] || { echo "usage: $0 --guest DAEMON BIN BACKEND (run by Tests/vm/kernel-matrix.sh)" >&2; exit 2; }
daemon=$2 bin=$3 backend=$4
R=${NETMAPD_VM_RESULTS:-/tmp}
n=${BRIDGE_FRAMES:-3000}
rate=${BRIDGE_RATE:-500}
results_init "bridge-$backend"
expect $bridge_results
export LD_PRELOAD="$bin/libnetmapd-shim.so"

ip netns add gS && ip netns add gW && ip netns add gR || { result "namespaces" 0; finish; }
for ns in gS gW gR; do ip netns exec $ns sysctl -qw net.ipv6.conf.default.disable_ipv6=1; done
ip link add name gs0 netns gS type veth peer name ga0 netns gW
ip link add name gb0 netns gW type veth peer name gr0 netns gR
for x in "gS gs0" "gW ga0" "gW gb0" "gR gr0"; do
	set -- $x
	ip -n "$1" link set dev "$2" up
	ethtool -K "$2" tx off rx off >/dev/null 2>&1 || true
done
for ns in gS gW gR; do
	ip -n $ns link set lo up
	# No IPv6 autoconfiguration chatter: a stray frame would start the
	# bridge's idle clock before the test's traffic.
	ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
# The bridge hands the kernel bursts of up to a ring; under emulation the
# receiving side's backlog (1000 frames by default) overflows.
sysctl -qw net.core.netdev_max_backlog=65536
# W has addresses, so that its stack would take what it is given.
ip -n gW addr add 198.18.7.1/24 dev ga0
ip -n gW addr add 198.18.8.1/24 dev gb0

log=$R/bridge-$backend.log
mkdir -p /run/netmapd
daemon_start "$log" "grep -q 'is ready' '$log'" 60 \
	env -u LD_PRELOAD "$daemon" --frontend auto --backend "$backend" --mode 0666 -v && pid=$DAEMON_PID \
	|| { cat "$log"; result "netmapd comes up (--frontend auto --backend $backend)" 0; finish; }
dev=$(sed -n 's/.* \(\/[^ ]*\) is ready.*/\1/p' "$log" | head -1)
fe=$(grep -o 'is ready ([A-Z]*' "$log" | head -1 | sed 's/.*(//')
echo "bridge-$backend: netmapd serves $dev ($fe)"
export NETMAPD_DEVICE=$dev

# direction SRC_NS SRC_IF DST_NS DST_IF LABEL
direction() {
	local sns=$1 sif=$2 dns=$3 dif=$4 label=$5 out=$R/bridge-$backend-$5
	nsenter --net=/run/netns/"$dns" "$bin/pkt_peer" recv "$dif" "$n" 60-1514 -T 5 -W 60 >"$out.recv" 2>&1 &
	local rp=$!
	nsenter --net=/run/netns/gW "$bin/nmd-bridge" -d "$dev" -a ga0 -b gb0 -T 8 -W 60 >"$out.bridge" 2>&1 &
	local bp=$!
	for _ in $(seq 1 300); do grep -q ready "$out.bridge" && grep -q ready "$out.recv" && break; sleep 0.1; done
	sleep 0.5
	nsenter --net=/run/netns/"$sns" "$bin/pkt_peer" send "$sif" "$n" 60-1514 -R "$rate" >"$out.send" 2>&1
	local src=$? rrc brc
	wait $rp; rrc=$?
	wait $bp; brc=$?
	tail -1 "$out.recv"; tail -1 "$out.bridge"
	result "bridge ($backend, $fe): $n frames $label byte-exact, bridge TX rings drained" \
		$([ $src = 0 ] && [ $rrc = 0 ] && [ $brc = 0 ] && echo 1 || echo 0) "send $src, recv $rrc, bridge $brc"
}
direction gS gs0 gR gr0 "S->R"
direction gR gr0 gS gs0 "R->S"

# The steal: with the bridge registered, what W's interfaces receive must
# not reach W's stack. A ping from S to W's address on ga0 goes to the
# bridge (and on to R), not to W's stack: no reply.
nsenter --net=/run/netns/gW "$bin/nmd-bridge" -d "$dev" -a ga0 -b gb0 -T 8 -W 8 >"$R/bridge-$backend-steal.bridge" 2>&1 &
bp=$!
for _ in $(seq 1 300); do grep -q ready "$R/bridge-$backend-steal.bridge" && break; sleep 0.1; done
ip -n gS addr add 198.18.7.2/24 dev gs0
if ip netns exec gS ping -c 3 -i 0.5 -W 1 -q 198.18.7.1 >/dev/null 2>&1; then stolen=0; else stolen=1; fi
how=$(case $backend in packet) tc -n gW filter show dev ga0 ingress 2>&1 | grep -o 'netmapd_steal' | head -1 ;; xdp) ip -n gW link show ga0 | grep -o 'xdp[a-z]*' | head -1 ;; esac)
wait $bp
seen=$(grep -c 'the stack sees them too\|cannot keep received frames' "$log")
result "bridge ($backend): W's stack does not answer a ping sent into the bridge (${how:-nothing attached}; warnings $seen)" \
	$([ $stolen = 1 ] && [ "$seen" = 0 ] && [ -n "$how" ] && echo 1 || echo 0)
# And after the bridge let go, W's stack answers again.
ok=0
for _ in 1 2 3; do ip netns exec gS ping -c 1 -W 1 -q 198.18.7.1 >/dev/null 2>&1 && { ok=1; break; }; sleep 0.5; done
result "bridge ($backend): W's stack answers again once the bridge is gone" $ok

# No carrier on the way out, then the carrier back: R's end of a fresh pair
# that was never up (what 6.1's AF_XDP holds; a carrier lost later is
# dropped there too).
ip -n gW link del gb0
ip link add name gb0 netns gW type veth peer name gr0 netns gR
ip -n gW link set dev gb0 up
out=$R/bridge-$backend-carrier
nsenter --net=/run/netns/gW "$bin/nmd-bridge" -d "$dev" -a ga0 -b gb0 -T 6 -W 60 >"$out.bridge" 2>&1 &
bp=$!
for _ in $(seq 1 300); do grep -q ready "$out.bridge" && break; sleep 0.1; done
nsenter --net=/run/netns/gS "$bin/pkt_peer" send gs0 1500 60-1514 -R "$rate" >"$out.send" 2>&1
sleep 2
held=$(grep -c 'holds [0-9]* AF_XDP transmissions' "$log")
ip -n gR link set dev gr0 up
wait $bp; brc=$?
tail -1 "$out.bridge"
result "bridge ($backend): into a link without carrier, then the carrier back: no TX slot left uncompleted (kernel held them: $held)" \
	$([ $brc = 0 ] && echo 1 || echo 0) "bridge $brc"

# Host rings: W's stack behind a one-interface bridge on ga0 (needs S's
# address on gs0, given in the steal check above).
out=$R/bridge-$backend-host
nsenter --net=/run/netns/gW "$bin/host_bridge" -d "$dev" -i ga0 >"$out.bridge" 2>"$out.err" &
bp=$!
for _ in $(seq 1 300); do grep -q ready "$out.err" && break; sleep 0.1; done
ok=0
for _ in 1 2 3; do ip netns exec gS ping -c 2 -i 0.5 -W 2 -q 198.18.7.1 >/dev/null 2>&1 && { ok=1; break; }; done
kill $bp; wait $bp; brc=$?
result "host rings ($backend, $fe): S's ping answered by W's stack through a NIC <-> host ring bridge ($(cat "$out.bridge"))" \
	$([ $ok = 1 ] && [ $brc = 0 ] && grep -q ready "$out.err" && echo 1 || echo 0) "$(tail -2 "$out.err")"
left=1
for _ in $(seq 1 30); do
	tc -n gW filter show dev ga0 egress 2>/dev/null | grep -q netmapd || tc -n gW filter show dev ga0 ingress 2>/dev/null | grep -q netmapd_host || { left=0; break; }
	sleep 0.1
done
result "host rings ($backend): released, no netmapd host filter left on ga0" $([ $left = 0 ] && echo 1 || echo 0)

daemon_stop "$pid" 30
result "netmapd stopped cleanly" $([ "$DAEMON_RC" = 0 ] && echo 1 || echo 0) "exit $DAEMON_RC"
[ "$DAEMON_RC" = 0 ] || tail -20 "$log"
grep -iE 'warn|error|not sent|dropped' "$log" | head -10
ip netns del gS; ip netns del gW; ip netns del gR
finish
