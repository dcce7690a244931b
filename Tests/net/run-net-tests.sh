#!/usr/bin/env bash
# run-net-tests.sh: the generic (AF_PACKET) backend against real interfaces.
# Two network namespaces joined by a veth pair; a netmapd per namespace
# (started with nsenter --net only, so the FUSE devices stay visible to
# every process); netmap programs of the project's own (tools/nmd-send,
# tools/nmd-recv) and a plain-socket peer (pkt_peer) on either end.
#
#   Tests/net/run-net-tests.sh [NETMAPD]
#
# Environment:
#   NETMAPD     the daemon (default: built with swift build --scratch-path .build-pkt)
#   NET_COUNT   frames per transfer (1000000)
#   NET_RX_FRAMES  frames of each RX socket's kernel ring (32768)
#   NET_RATE    sender pace in frames/s, 0 = as fast as possible (120000):
#               nothing paces a netmap sender to its receiver across a veth,
#               and frames the receiving socket's ring cannot hold are lost,
#               as they would be with netmap
#
# Needs root. Prints one line per check and "net-tests: N passed, M failed";
# exits non-zero if any check failed. Everything it creates (namespaces,
# daemons, mounts) goes away on exit, however it exits.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
count=${NET_COUNT:-1000000}
rate=${NET_RATE:-120000}

[ "$(id -u)" = 0 ] || { echo "net-tests: needs root" >&2; exit 1; }

NETMAPD=${1:-${NETMAPD:-}}
if [ -z "$NETMAPD" ]; then
	echo "net-tests: building netmapd" >&2
	swift build --package-path "$root" --scratch-path "$root/.build-pkt" --product netmapd >&2 || exit 1
	NETMAPD=$(swift build --package-path "$root" --scratch-path "$root/.build-pkt" --show-bin-path)/netmapd
fi
NETMAPD=$(readlink -f "$NETMAPD")

. "$here/netns-lib.sh"
work=$(mktemp -d /tmp/netmapd-net-tests.XXXXXX)
net_add_cleanup "rm -rf $work"
net_add_cleanup "for m in $work/*/netmap; do umount -l \$m; done"

cc() { gcc -O2 -Wall -Wextra -Werror -I "$root/Sources/ABI/include" -I "$root/tools" -o "$work/$1" "$2" || exit 1; }
cc nmd-send "$root/tools/nmd-send.c"
cc nmd-recv "$root/tools/nmd-recv.c"
cc pkt_peer "$here/pkt_peer.c"
cc pkt_errors "$here/pkt_errors.c"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS net: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL net: $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; return 1; fi; }
absent() { ! "$@"; }
# Retries a check for up to 3 s: a file's release reaches the daemon
# asynchronously after the program exits (FUSE and CUSE both queue it).
eventually() {
	local i
	for i in $(seq 30); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# Waits until FILE has a line matching PATTERN (10 s).
wait_line() {
	local i
	for i in $(seq 100); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

net_setup
DEV_A=$work/a/netmap
DEV_B=$work/b/netmap
# A deep kernel ring per RX socket (32768 frames, ~50 MB): on a busy
# two-core machine a receiving client can be off the CPU for a few hundred
# milliseconds, and nothing slows the sender down meanwhile.
rx_frames=${NET_RX_FRAMES:-32768}
start_a() { net_start_daemon "$NS_A" "$DEV_A" "$work/a.log" -v --packet-rx-frames "$rx_frames" && PID_A=$NET_DAEMON_PID; }
start_b() { net_start_daemon "$NS_B" "$DEV_B" "$work/b.log" -v --packet-rx-frames "$rx_frames" && PID_B=$NET_DAEMON_PID; }
start_a || exit 1
start_b || exit 1
MAC_A=$(in_a ip -br link show "$IF_A" | awk '{print $3}')
echo "net-tests: $NS_A/$IF_A ($ADDR_A, $MAC_A) <-> $NS_B/$IF_B ($ADDR_B); $count frames per transfer, pace ${rate} pps"

# ---- transfers ----

# nm_to_nm SRC_DEV SRC_IF DST_DEV DST_IF LABEL
nm_to_nm() {
	local out=$work/xfer.$5
	"$work/nmd-recv" -d "$3" -i "$4" -n "$count" -l 60-1514 -T 3 >"$out.recv" 2>"$out.err" &
	local rp=$!
	wait_line "$out.err" ready || { fail "$5: receiver did not start"; cat "$out.err"; kill $rp; return; }
	local t0=$SECONDS
	"$work/nmd-send" -d "$1" -i "$2" -n "$count" -l 60-1514 -R "$rate" -q >"$out.send" 2>&1
	local src=$?
	wait $rp
	local rrc=$?
	cat "$out.send" "$out.recv"
	check "$5: $count frames of 60-1514 bytes arrive byte-exact ($((SECONDS - t0)) s)" \
		test $src = 0 -a $rrc = 0 || drops
}

# After a failed transfer: what the daemons dropped (logged at release).
drops() { sleep 0.5; grep -h -E 'dropped|not sent' "$work/a.log" "$work/b.log" | tail -4; return 0; }

# nm_to_socket SRC_DEV SRC_IF PEER_NS_RUNNER PEER_IF LABEL
nm_to_socket() {
	local out=$work/xfer.$5
	$3 "$work/pkt_peer" recv "$4" "$count" 60-1514 -T 3 >"$out.recv" 2>"$out.err" &
	local rp=$!
	wait_line "$out.err" ready || { fail "$5: socket receiver did not start"; kill $rp; return; }
	local t0=$SECONDS
	"$work/nmd-send" -d "$1" -i "$2" -n "$count" -l 60-1514 -R "$rate" -q >"$out.send" 2>&1
	local src=$?
	wait $rp
	local rrc=$?
	cat "$out.send" "$out.recv"
	check "$5: $count frames arrive byte-exact at a plain AF_PACKET socket ($((SECONDS - t0)) s)" \
		test $src = 0 -a $rrc = 0 || drops
}

# socket_to_nm PEER_NS_RUNNER PEER_IF DST_DEV DST_IF LABEL
socket_to_nm() {
	local out=$work/xfer.$5
	"$work/nmd-recv" -d "$3" -i "$4" -n "$count" -l 60-1514 -T 3 >"$out.recv" 2>"$out.err" &
	local rp=$!
	wait_line "$out.err" ready || { fail "$5: receiver did not start"; kill $rp; return; }
	local t0=$SECONDS
	$1 "$work/pkt_peer" send "$2" "$count" 60-1514 -R "$rate" >"$out.send" 2>&1
	local src=$?
	wait $rp
	local rrc=$?
	cat "$out.send" "$out.recv"
	check "$5: $count frames from a plain AF_PACKET socket arrive byte-exact ($((SECONDS - t0)) s)" \
		test $src = 0 -a $rrc = 0 || drops
}

nm_to_nm "$DEV_A" "$IF_A" "$DEV_B" "$IF_B" "netmap A -> netmap B"
nm_to_nm "$DEV_B" "$IF_B" "$DEV_A" "$IF_A" "netmap B -> netmap A"
nm_to_socket "$DEV_A" "$IF_A" in_b "$IF_B" "netmap A -> socket B"
socket_to_nm in_b "$IF_B" "$DEV_A" "$IF_A" "socket B -> netmap A"

# ---- the port's own transmissions do not come back on its RX rings ----

"$work/nmd-recv" -d "$DEV_A" -i "$IF_A" -t 3 -W 3 >"$work/own.recv" 2>"$work/own.err" &
rp=$!
wait_line "$work/own.err" ready
"$work/nmd-send" -d "$DEV_A" -i "$IF_A" -n 20000 -l 60-1514 -q >/dev/null 2>&1
wait $rp
cat "$work/own.recv"
check "20000 frames sent on $IF_A: none shows up on $IF_A's RX ring" grep -q '^nmd-recv: 0 frames' "$work/own.recv"

# ---- stealing: the host stack does not see what the port receives ----

steal_present() { in_a tc filter show dev "$IF_A" ingress 2>/dev/null | grep -q netmapd_steal; }
clsact_present() { in_a tc qdisc show dev "$IF_A" 2>/dev/null | grep -q clsact; }
ping_a() { in_b ping -c "${1:-2}" -i 0.3 -W 1 -q "$ADDR_A" >/dev/null 2>&1; }

check "ping B -> A answered before any netmap program" eventually ping_a 1
# The peer knows A's MAC, so the echo requests themselves reach A's port.
in_b ip neigh replace "$ADDR_A" lladdr "$MAC_A" dev "$IF_B" nud permanent
"$work/nmd-recv" -d "$DEV_A" -i "$IF_A" -t 6 -W 6 >"$work/steal.recv" 2>"$work/steal.err" &
rp=$!
wait_line "$work/steal.err" ready
check "tc ingress filter netmapd_steal attached while a program holds $IF_A" steal_present
check "ping B -> A gets no answer while a netmap program holds $IF_A" absent ping_a 4
wait $rp
cat "$work/steal.recv"
other=$(sed -n 's/.*other traffic \([0-9]*\).*/\1/p' "$work/steal.recv")
check "the port's socket still received the echo requests (${other:-0} other frames)" test "${other:-0}" -ge 4
check "filter removed when the program exits" eventually absent steal_present
check "clsact qdisc removed when the program exits" eventually absent clsact_present
check "ping B -> A answered again after the program exits" ping_a

# ---- errors ----

check "unknown interface: REGISTER gives ENXIO" "$work/pkt_errors" register "$DEV_A" nosuchif0 ENXIO
check "unknown interface: PORT_INFO_GET gives ENXIO" "$work/pkt_errors" info "$DEV_A" nosuchif0 ENXIO
check "PORT_INFO_GET reports 1 host ring pair" "$work/pkt_errors" info "$DEV_A" "$IF_A" OK
in_a ip link set "$IF_A" mtu 4000
check "MTU 4000 > 2048-byte buffers: REGISTER with RX rings gives EINVAL" "$work/pkt_errors" register "$DEV_A" "$IF_A" EINVAL
check "MTU 4000: REGISTER of TX rings only succeeds" "$work/pkt_errors" register "$DEV_A" "$IF_A" OK tx
in_a ip link set "$IF_A" mtu 2048
check "MTU 2048 = buffer size: REGISTER succeeds" "$work/pkt_errors" register "$DEV_A" "$IF_A" OK
in_a ip link set "$IF_A" mtu 1500

# Interface deleted while registered.
X0=${NET_TAG}x0
in_a ip link add "$X0" type veth peer name "${NET_TAG}x1"
in_a ip link set "$X0" up
in_a ip link set "${NET_TAG}x1" up
mkfifo "$work/vanish.in"
"$work/pkt_errors" vanish "$DEV_A" "$X0" <"$work/vanish.in" >"$work/vanish.out" 2>&1 &
vp=$!
exec 9>"$work/vanish.in"
wait_line "$work/vanish.out" '^ready'
in_a ip link del "$X0"
sleep 0.5
echo go >&9
exec 9>&-
wait $vp
vrc=$?
grep -E '^(PASS|FAIL)' "$work/vanish.out"
check "interface deleted while registered: EIO on sync, POLLERR on poll" test $vrc = 0
grep -q "$X0: interface deleted" "$work/a.log" && pass "daemon logged the deletion" || fail "daemon logged the deletion"
saved=$count
count=20000
nm_to_nm "$DEV_A" "$IF_A" "$DEV_B" "$IF_B" "after the deletion, the daemon still serves A -> B"
count=$saved
check "daemon A still running" kill -0 "$PID_A"

# ---- what a killed daemon leaves is removed at the next start ----

"$work/nmd-recv" -d "$DEV_A" -i "$IF_A" -t 30 -W 30 >/dev/null 2>"$work/kill.err" &
rp=$!
wait_line "$work/kill.err" ready
kill -KILL "$PID_A"
wait "$PID_A" 2>/dev/null
wait $rp 2>/dev/null
check "after kill -9 the filter is still there (nobody removed it)" steal_present
umount -l "$DEV_A" 2>/dev/null
start_a || exit 1
check "restart: the leftover filter is removed" absent steal_present
check "restart: the leftover clsact qdisc is removed" absent clsact_present
grep -q "left by an earlier netmapd" "$work/a.log" && pass "restart: the daemon said what it removed" || fail "restart: the daemon said what it removed"
check "ping B -> A answered after the restart" ping_a

# ---- clean exit with a client still holding the port ----

"$work/nmd-recv" -d "$DEV_A" -i "$IF_A" -t 30 -W 30 >/dev/null 2>"$work/term.err" &
rp=$!
wait_line "$work/term.err" ready
check "filter attached again" steal_present
net_stop_daemon "$PID_A"
wait $rp 2>/dev/null
check "SIGTERM with a client attached: filter removed at exit" absent steal_present
check "SIGTERM with a client attached: clsact removed at exit" absent clsact_present

echo "net-tests: $passed passed, $failed failed"
[ "$failed" = 0 ]
