#!/usr/bin/env bash
# run-net-tests.sh: a backend against real interfaces — the generic one
# (AF_PACKET, default) or, with NET_BACKEND=xdp, the native one (AF_XDP;
# Tests/net/run-xdp-tests.sh). The same checks run for both (among them an
# interface deleted while registered and one deleted under traffic: errors
# for the clients, daemon up, POOLSTAT back, via Tests/device/nm_faults),
# plus, for the native backend, a veth pair with four queues (ring N is
# queue N) and the per-interface backend choice of --backend auto.
# Two network namespaces A and B joined by a veth pair, and one netmapd in a
# third namespace H that plays the host (started with nsenter --net only, so
# its FUSE device stays visible to every process); netmap programs of the
# project's own (tools/nmd-send, tools/nmd-recv) run in A or B and name
# their own namespace's interfaces, which the one daemon resolves there
# (issue #20); a plain-socket peer (pkt_peer) on either end. The namespace
# checks: names of H's and of the other namespace's interfaces give ENXIO
# (REGISTER and PORT_INFO_GET, legacy and API 14), an interface called eth0
# in both A and B is two independent ports, a namespace is let go when its
# last port goes, and what a killed daemon left in A is removed at restart.
#
#   Tests/net/run-net-tests.sh [NETMAPD]
#
# Environment:
#   NETMAPD     the daemon (default: built with swift build --scratch-path .build-pkt)
#   NET_BACKEND packet (default) or xdp
#   NET_COUNT   frames per transfer (1000000)
#   NET_RX_FRAMES  frames each RX socket can hold in the kernel (32768):
#               --packet-rx-frames, or --xdp-rx-frames for AF_XDP
#   NET_RATE    sender pace in frames/s, 0 = as fast as possible (120000):
#               nothing paces a netmap sender to its receiver across a veth,
#               and frames the receiving socket's ring cannot hold are lost,
#               as they would be with netmap
#
# Needs root. Prints one line per check ("ok - ..." / "not ok - ...") and
# "net-tests: N passed, M failed"; exits non-zero if any check failed or
# fewer checks ran than expected (Tests/lib/results.sh). Everything it
# creates (namespaces, daemons, mounts) goes away on exit, however it exits.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
count=${NET_COUNT:-1000000}
rate=${NET_RATE:-120000}
backend=${NET_BACKEND:-packet}
export NET_BACKEND=$backend
case $backend in packet|xdp) ;; *) echo "net-tests: NET_BACKEND must be packet or xdp" >&2; exit 2 ;; esac
. "$root/Tests/lib/results.sh"
results_init net-tests
# A step nothing else can run without: one failed result, then the summary.
abort() { expect 1; result "$1" 0 "${2:-}"; finish; }

[ "$(id -u)" = 0 ] || abort "run as root"

. "$root/Tests/lib/daemon.sh"
daemon_find "$root" "${1:-}" || abort "build netmapd"

. "$here/netns-lib.sh"
# AF_XDP pins the region's pages: its file must be on tmpfs.
if [ "$backend" = xdp ]; then
	work=$(mktemp -d /dev/shm/netmapd-net-tests.XXXXXX)
else
	work=$(mktemp -d /tmp/netmapd-net-tests.XXXXXX)
fi
net_add_cleanup "rm -rf $work"
net_add_cleanup "for m in $work/*/netmap; do umount -l \$m; done"

cc() { gcc -O2 -Wall -Wextra -Werror -I "$root/Sources/ABI/CNetmapABI/include" -I "$root/tools" -o "$work/$1" "$2" || abort "build $2"; }
cc nmd-send "$root/tools/nmd-send.c"
cc nmd-recv "$root/tools/nmd-recv.c"
cc pkt_peer "$here/pkt_peer.c"
cc pkt_errors "$here/pkt_errors.c"
cc rx_stable "$here/rx_stable.c"
gcc -O2 -Wall -Wextra -Werror -pthread -I "$root/Sources/ABI/CNetmapABI/include" -o "$work/nm_faults" "$root/Tests/device/nm_faults.c" \
	|| abort "build nm_faults.c"

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
NS_H="${NET_TAG}h"
ip netns add "$NS_H"
net_add_cleanup "ip netns del $NS_H"
RUN_A="nsenter --net=/run/netns/$NS_A"
RUN_B="nsenter --net=/run/netns/$NS_B"
RUN_H="nsenter --net=/run/netns/$NS_H"
# One daemon for both namespaces: one device.
DEV=$work/d/netmap
DEV_A=$DEV
DEV_B=$DEV
# A deep kernel ring per RX socket (32768 frames, ~50 MB): on a busy
# two-core machine a receiving client can be off the CPU for a few hundred
# milliseconds, and nothing slows the sender down meanwhile.
rx_frames=${NET_RX_FRAMES:-32768}
LOG=$work/d.log
start_d() { net_start_daemon "$NS_H" "$DEV" "$LOG" -v --$backend-rx-frames "$rx_frames" && PID_A=$NET_DAEMON_PID; }
start_d || abort "netmapd starts in $NS_H"
MAC_A=$(in_a ip -br link show "$IF_A" | awk '{print $3}')
echo "net-tests ($backend): $NS_A/$IF_A ($ADDR_A, $MAC_A) <-> $NS_B/$IF_B ($ADDR_B), one netmapd in $NS_H; $count frames per transfer, pace ${rate} pps"

# ---- transfers ----

# nm_to_nm SRC_RUNNER SRC_IF DST_RUNNER DST_IF LABEL (a runner puts the
# program in the interface's namespace: $RUN_A, $RUN_B)
nm_to_nm() {
	local out=$work/xfer.$5
	$3 "$work/nmd-recv" -d "$DEV" -i "$4" -n "$count" -l 60-1514 -T 3 ${RECV_ARGS:-} >"$out.recv" 2>"$out.err" &
	local rp=$!
	wait_line "$out.err" ready || { result "$5: receiver did not start" 0; cat "$out.err"; kill $rp; return; }
	local t0=$SECONDS
	$1 "$work/nmd-send" -d "$DEV" -i "$2" -n "$count" -l 60-1514 -R "$rate" -q >"$out.send" 2>&1
	local src=$?
	wait $rp
	local rrc=$?
	cat "$out.send" "$out.recv"
	check "$5: $count frames of 60-1514 bytes arrive byte-exact ($((SECONDS - t0)) s)" \
		test $src = 0 -a $rrc = 0 || drops
}

# After a failed transfer: what the daemons dropped (logged at release).
drops() { sleep 0.5; grep -h -E 'dropped|not sent' "$LOG" | tail -4; return 0; }

# nm_to_socket SRC_RUNNER SRC_IF PEER_NS_RUNNER PEER_IF LABEL
nm_to_socket() {
	local out=$work/xfer.$5
	$3 "$work/pkt_peer" recv "$4" "$count" 60-1514 -T 3 >"$out.recv" 2>"$out.err" &
	local rp=$!
	wait_line "$out.err" ready || { result "$5: socket receiver did not start" 0; kill $rp; return; }
	local t0=$SECONDS
	$1 "$work/nmd-send" -d "$DEV" -i "$2" -n "$count" -l 60-1514 -R "$rate" -q >"$out.send" 2>&1
	local src=$?
	wait $rp
	local rrc=$?
	cat "$out.send" "$out.recv"
	check "$5: $count frames arrive byte-exact at a plain AF_PACKET socket ($((SECONDS - t0)) s)" \
		test $src = 0 -a $rrc = 0 || drops
}

# socket_to_nm PEER_NS_RUNNER PEER_IF DST_RUNNER DST_IF LABEL
socket_to_nm() {
	local out=$work/xfer.$5
	$3 "$work/nmd-recv" -d "$DEV" -i "$4" -n "$count" -l 60-1514 -T 3 >"$out.recv" 2>"$out.err" &
	local rp=$!
	wait_line "$out.err" ready || { result "$5: receiver did not start" 0; kill $rp; return; }
	local t0=$SECONDS
	$1 "$work/pkt_peer" send "$2" "$count" 60-1514 -R "$rate" >"$out.send" 2>&1
	local src=$?
	wait $rp
	local rrc=$?
	cat "$out.send" "$out.recv"
	check "$5: $count frames from a plain AF_PACKET socket arrive byte-exact ($((SECONDS - t0)) s)" \
		test $src = 0 -a $rrc = 0 || drops
}

expect 5
nm_to_nm "$RUN_A" "$IF_A" "$RUN_B" "$IF_B" "netmap A -> netmap B"
nm_to_nm "$RUN_B" "$IF_B" "$RUN_A" "$IF_A" "netmap B -> netmap A"
nm_to_socket "$RUN_A" "$IF_A" in_b "$IF_B" "netmap A -> socket B"
socket_to_nm in_b "$IF_B" "$RUN_A" "$IF_A" "socket B -> netmap A"
# A receiver that gives every slot back with another buffer (NS_BUF_CHANGED),
# as a zero-copy forwarder does.
saved=$count
count=$(( count < 200000 ? count : 200000 ))
RECV_ARGS="-x 4096" nm_to_nm "$RUN_B" "$IF_B" "$RUN_A" "$IF_A" "netmap B -> netmap A, receiver swapping buffers"
count=$saved

# ---- monitors of interface ports (issue #16) ----
# A -> B with a /r copy monitor of B's interface (in B) and a /t copy
# monitor of A's (in A): each must see every frame, byte-exact, once. Both
# ports are held in netmap mode by a second program each (a receiver on A
# that gets nothing, a sender on B of one frame of another stream a second),
# so that the /t monitor is there before the sender's first frame and the
# /r one is not cut off when the receiver leaves (netmap's rule). A monitor
# that falls a ring behind loses frames, as in netmap: the pace is lower
# here (2000 frames/s, 5 s) so that a monitor descheduled for half a second
# (a busy shared machine does that) keeps up: its ring holds 1023 frames
# where the receiver's socket holds thousands.
# A /z monitor of B's interface gets, by buffer swap, what B's receiver
# released: every frame as well.
expect 4
mcount=$(( count < 10000 ? count : 10000 ))
mon=$work/mon
$RUN_B "$work/nmd-recv" -d "$DEV" -i "$IF_B" -n $mcount -l 60-1514 -T 3 >"$mon.recv" 2>"$mon.recv.err" &
mrp=$!
wait_line "$mon.recv.err" ready
$RUN_B "$work/nmd-send" -d "$DEV" -i "$IF_B" -n 1000 -R 1 -s 9 -q >/dev/null 2>&1 &
mholdb=$!
$RUN_B "$work/nmd-recv" -d "$DEV" -i "$IF_B/r" -n $mcount -l 60-1514 -T 3 >"$mon.r" 2>"$mon.r.err" &
mrm=$!
$RUN_B "$work/nmd-recv" -d "$DEV" -i "$IF_B/z" -n $mcount -l 60-1514 -T 3 >"$mon.z" 2>"$mon.z.err" &
mzm=$!
$RUN_A "$work/nmd-recv" -d "$DEV" -i "$IF_A" -W 120 -T 120 >/dev/null 2>"$mon.hold.err" &
mhold=$!
wait_line "$mon.hold.err" ready
$RUN_A "$work/nmd-recv" -d "$DEV" -i "$IF_A/t" -n $mcount -l 60-1514 -T 3 >"$mon.t" 2>"$mon.t.err" &
mtm=$!
wait_line "$mon.r.err" ready
wait_line "$mon.z.err" ready
wait_line "$mon.t.err" ready
$RUN_A "$work/nmd-send" -d "$DEV" -i "$IF_A" -n $mcount -l 60-1514 -R 2000 -q >"$mon.send" 2>&1
msrc=$?
wait $mrp; mrrc=$?
wait $mrm; mrrm=$?
wait $mtm; mrtm=$?
wait $mzm; mrzm=$?
kill $mhold $mholdb 2>/dev/null; wait $mhold $mholdb 2>/dev/null
cat "$mon.recv" "$mon.r" "$mon.t" "$mon.z"
check "monitored transfer A -> B: $mcount frames arrive byte-exact" test $msrc = 0 -a $mrrc = 0 || drops
check "a /r monitor of $IF_B ($backend) sees all $mcount frames byte-exact" test $mrrm = 0 || cat "$mon.r.err"
check "a /t monitor of $IF_A ($backend) sees all $mcount frames byte-exact" test $mrtm = 0 || cat "$mon.t.err"
check "a /z monitor of $IF_B ($backend) gets all $mcount frames byte-exact by buffer swap" test $mrzm = 0 || cat "$mon.z.err"

# ---- RX slots keep their buffers (issue #14 item 13) ----
expect 1
$RUN_A "$work/rx_stable" "$DEV" "$IF_A" 20000 >"$work/stable.out" 2>"$work/stable.err" &
sp=$!
wait_line "$work/stable.err" ready
in_b "$work/pkt_peer" send "$IF_B" 20000 60-1514 -R "$rate" >/dev/null 2>&1
wait $sp
src=$?
check "RX slots keep their buffers: 20000 frames received, no buf_idx changed, no NS_BUF_CHANGED ($(cat "$work/stable.out" "$work/stable.err" | grep rx_stable | tail -1))" test $src = 0

# ---- names mean the caller's interfaces (one daemon, three namespaces) ----
expect 21

# An interface only the daemon's namespace (H) has, and one only B has: from
# A neither exists, whatever the API; from A, A's own name does.
IF_H=${NET_TAG}h0
$RUN_H ip link add "$IF_H" type veth peer name "${NET_TAG}h1"
for req in info register ginfo regif; do
	check "from A, $req of H's $IF_H gives ENXIO" $RUN_A "$work/pkt_errors" $req "$DEV" "$IF_H" ENXIO
	check "from A, $req of B's $IF_B gives ENXIO" $RUN_A "$work/pkt_errors" $req "$DEV" "$IF_B" ENXIO
	check "from B, $req of A's $IF_A gives ENXIO" $RUN_B "$work/pkt_errors" $req "$DEV" "$IF_A" ENXIO
done
check "from A, PORT_INFO_GET of A's own $IF_A succeeds" $RUN_A "$work/pkt_errors" info "$DEV" "$IF_A" OK
check "from H (the daemon's namespace), NIOCGINFO of $IF_H succeeds" $RUN_H "$work/pkt_errors" ginfo "$DEV" "$IF_H" OK
check "from H, NIOCGINFO of A's $IF_A gives ENXIO" $RUN_H "$work/pkt_errors" ginfo "$DEV" "$IF_A" ENXIO

# eth0 in A and eth0 in B: two ports. Each namespace sends on its eth0 and
# receives on the peer eth0p at once; each receiver must get exactly its own
# namespace's frames, and the daemon must list two eth0 ports.
for x in "$RUN_A" "$RUN_B"; do
	$x ip link add eth0 type veth peer name eth0p
	$x ip link set eth0 up
	$x ip link set eth0p up
	$x ethtool -K eth0 tx off rx off >/dev/null 2>&1 || true
	$x ethtool -K eth0p tx off rx off >/dev/null 2>&1 || true
done
ecount=50000
$RUN_A "$work/nmd-recv" -d "$DEV" -i eth0p -n $ecount -l 60-1514 -T 3 >"$work/eth0.a.recv" 2>"$work/eth0.a.err" &
ra=$!
$RUN_B "$work/nmd-recv" -d "$DEV" -i eth0p -n $((ecount / 2)) -l 60-1514 -T 3 >"$work/eth0.b.recv" 2>"$work/eth0.b.err" &
rb=$!
wait_line "$work/eth0.a.err" ready
wait_line "$work/eth0.b.err" ready
netmapctl=$(dirname "$NETMAPD")/netmapctl
"$netmapctl" status --json --socket "$(dirname "$DEV")/run/control" >"$work/eth0.status" 2>&1
$RUN_A "$work/nmd-send" -d "$DEV" -i eth0 -n $ecount -l 60-1514 -R "$rate" -q >"$work/eth0.a.send" 2>&1 &
sa=$!
$RUN_B "$work/nmd-send" -d "$DEV" -i eth0 -n $((ecount / 2)) -l 60-1514 -R "$rate" -q >"$work/eth0.b.send" 2>&1 &
sb=$!
wait $sa; rsa=$?
wait $sb; rsb=$?
wait $ra; rra=$?
wait $rb; rrb=$?
cat "$work/eth0.a.recv" "$work/eth0.b.recv"
check "eth0 in A and eth0 in B are two ports: A's $ecount and B's $((ecount / 2)) frames each arrive byte-exact in their own namespace" \
	test $rsa = 0 -a $rsb = 0 -a $rra = 0 -a $rrb = 0
eth0s=$(jq -r '[.engine.ports[] | select(.name == "eth0p") | .namespace] | unique | length' "$work/eth0.status" 2>/dev/null)
check "netmapctl status lists eth0p twice, in two namespaces (${eth0s:-?})" test "${eth0s:-0}" = 2 || head -c 600 "$work/eth0.status"

# A container: its own network namespace (A) and mount namespace, where the
# only netmapd thing it sees is the device, bind-mounted at its /dev/netmap
# (docs: README "Containers"); the daemon's run directory is hidden. Its
# program receives on its own interface, and B's name gives ENXIO in there.
ctr=$work/ctr
mkdir -p "$ctr/dev"
container() {   # container CMD...: runs CMD in a fresh mount namespace inside A
	$RUN_A unshare --mount --propagation private sh -c '
		mount -t tmpfs ctr "$0/dev" && : >"$0/dev/netmap" && mount --bind "$1" "$0/dev/netmap" &&
		mount -t tmpfs hidden "$(dirname "$1")" && shift && exec "$@"' "$ctr" "$DEV" "$@"
}
container "$work/pkt_errors" register "$ctr/dev/netmap" "$IF_B" ENXIO >"$work/ctr.err" 2>&1
check "container: B's $IF_B gives ENXIO through its bind-mounted /dev/netmap" test $? = 0 || cat "$work/ctr.err"
container sh -c 'test ! -e "$0"' "$(dirname "$DEV")/run/control"
check "container: the daemon's run directory (control socket, region file) is not visible" test $? = 0
container "$work/nmd-recv" -d "$ctr/dev/netmap" -i "$IF_A" -n 20000 -l 60-1514 -T 3 >"$work/ctr.recv" 2>"$work/ctr.rerr" &
rp=$!
wait_line "$work/ctr.rerr" ready
$RUN_B "$work/nmd-send" -d "$DEV" -i "$IF_B" -n 20000 -l 60-1514 -R "$rate" -q >"$work/ctr.send" 2>&1
src=$?
wait $rp
rrc=$?
cat "$work/ctr.recv"
check "container: 20000 frames from B arrive byte-exact at a program in the container, on its own $IF_A" test $src = 0 -a $rrc = 0

# A namespace is held only while netmapd serves something in it.
ino_b=$(stat -Lc %i "/run/netns/$NS_B")
holds_b() { ls -l "/proc/$PID_A/fd" 2>/dev/null | grep -q "net:\[$ino_b\]"; }
check "no port left in B: the daemon holds no descriptor of B's namespace" eventually absent holds_b

# ---- the port's own transmissions do not come back on its RX rings ----

# Only meaningful when the frames really went out: the sender must have
# sent all 20000 (exit 0, its count), and the receiver must have run to its
# end (its summary line; exit 1 is nmd-recv's "nothing came", 3 an error).
expect 1
$RUN_A "$work/nmd-recv" -d "$DEV_A" -i "$IF_A" -t 3 -W 3 >"$work/own.recv" 2>"$work/own.err" &
rp=$!
wait_line "$work/own.err" ready
$RUN_A "$work/nmd-send" -d "$DEV_A" -i "$IF_A" -n 20000 -l 60-1514 -q >"$work/own.send" 2>&1
src=$?
wait $rp
rrc=$?
cat "$work/own.send" "$work/own.recv"
own_rx_clean() {
	[ $src = 0 ] && grep -q '^nmd-send: 20000 frames' "$work/own.send" &&
		[ $rrc = 1 ] && grep -q '^nmd-recv: 0 frames' "$work/own.recv"
}
check "20000 frames sent on $IF_A (sender exit $src, receiver exit $rrc): none shows up on $IF_A's RX ring" own_rx_clean

# ---- stealing: the host stack does not see what the port receives ----

# What keeps received frames from the stack: a tc ingress drop (AF_PACKET)
# or the XDP program that redirects the queues to the sockets (AF_XDP).
if [ "$backend" = xdp ]; then
	stealer="XDP program netmapd_xsk"
	steal_present() { in_a ip link show dev "${1:-$IF_A}" 2>/dev/null | grep -q 'prog/xdp.* name netmapd_xsk'; }
	clsact_present() { in_a tc qdisc show dev "$IF_A" 2>/dev/null | grep -q clsact; }
else
	stealer="tc ingress filter netmapd_steal"
	steal_present() { in_a tc filter show dev "$IF_A" ingress 2>/dev/null | grep -q netmapd_steal; }
	clsact_present() { in_a tc qdisc show dev "$IF_A" 2>/dev/null | grep -q clsact; }
fi
ping_a() { in_b ping -c "${1:-2}" -i 0.3 -W 1 -q "$ADDR_A" >/dev/null 2>&1; }

expect 7

check "ping B -> A answered before any netmap program" eventually ping_a 1
# The peer knows A's MAC, so the echo requests themselves reach A's port.
in_b ip neigh replace "$ADDR_A" lladdr "$MAC_A" dev "$IF_B" nud permanent
$RUN_A "$work/nmd-recv" -d "$DEV_A" -i "$IF_A" -t 6 -W 6 >"$work/steal.recv" 2>"$work/steal.err" &
rp=$!
wait_line "$work/steal.err" ready
check "$stealer attached while a program holds $IF_A" steal_present
check "ping B -> A gets no answer while a netmap program holds $IF_A" absent ping_a 4
wait $rp
cat "$work/steal.recv"
other=$(sed -n 's/.*other traffic \([0-9]*\).*/\1/p' "$work/steal.recv")
check "the port's socket still received the echo requests (${other:-0} other frames)" test "${other:-0}" -ge 4
check "$stealer removed when the program exits" eventually absent steal_present
check "clsact qdisc removed when the program exits" eventually absent clsact_present
check "ping B -> A answered again after the program exits" ping_a

# ---- errors ----

expect 6
check "unknown interface: REGISTER gives ENXIO" $RUN_A "$work/pkt_errors" register "$DEV_A" nosuchif0 ENXIO
check "unknown interface: PORT_INFO_GET gives ENXIO" $RUN_A "$work/pkt_errors" info "$DEV_A" nosuchif0 ENXIO
check "PORT_INFO_GET reports 1 host ring pair" $RUN_A "$work/pkt_errors" info "$DEV_A" "$IF_A" OK
in_a ip link set "$IF_A" mtu 4000
check "MTU 4000 > 2048-byte buffers: REGISTER with RX rings gives EINVAL" $RUN_A "$work/pkt_errors" register "$DEV_A" "$IF_A" EINVAL
check "MTU 4000: REGISTER of TX rings only succeeds" $RUN_A "$work/pkt_errors" register "$DEV_A" "$IF_A" OK tx
in_a ip link set "$IF_A" mtu 2048
check "MTU 2048 = buffer size: REGISTER succeeds" $RUN_A "$work/pkt_errors" register "$DEV_A" "$IF_A" OK
in_a ip link set "$IF_A" mtu 1500

# Interface deleted while registered.
expect 2
X0=${NET_TAG}x0
in_a ip link add "$X0" type veth peer name "${NET_TAG}x1"
in_a ip link set "$X0" up
in_a ip link set "${NET_TAG}x1" up
mkfifo "$work/vanish.in"
$RUN_A "$work/pkt_errors" vanish "$DEV_A" "$X0" <"$work/vanish.in" >"$work/vanish.out" 2>&1 &
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
check "daemon logged the deletion" grep -q "$X0 (netns [0-9]*): interface deleted" "$LOG"

expect 3
# Link taken down while registered (§5.9, §6): netmap only locks the rings.
# Syncs give no EIO and poll no POLLERR; a poll sleeping for POLLOUT wakes
# when the link is back. The program takes the link down and up itself.
L0=${NET_TAG}l0
in_a ip link add "$L0" type veth peer name "${NET_TAG}l1"
in_a ip link set "$L0" up
in_a ip link set "${NET_TAG}l1" up
in_a "$work/pkt_errors" linkdown "$DEV_A" "$L0" >"$work/linkdown.out" 2>&1
lrc=$?
grep -E '^(PASS|FAIL)' "$work/linkdown.out"
check "link down while registered: syncs and poll wait for it (no EIO, no POLLERR), poll wakes when it is up" test $lrc = 0
in_a ip link del "$L0"

# Bad TX slots (§4.6, §5.5): a buffer index past the pool goes out as
# buffer 0, a length past the buffer is cut to the buffer size, and the
# ring counts both (status "badSlots"). MTUs raised so 2048 bytes pass.
in_a ip link set "$IF_A" mtu 2100
in_b ip link set "$IF_B" mtu 2100
mkfifo "$work/bad.in"
in_a "$work/pkt_errors" badslots "$DEV_A" "$IF_A" "/run/netns/$NS_B" "$IF_B" <"$work/bad.in" >"$work/bad.out" 2>&1 &
bp=$!
exec 9>"$work/bad.in"
wait_line "$work/bad.out" '^ready'
bad=$("$work/pkt_errors" status "$(dirname "$DEV_A")/run/control" | jq -r --arg p "$IF_A" \
	'.engine.ports[] | select(.name == $p) | .rings[] | select(.direction == "tx" and .index == 0 and (.host | not)) | .badSlots')
echo go >&9
exec 9>&-
wait $bp
brc=$?
in_a ip link set "$IF_A" mtu 1500
in_b ip link set "$IF_B" mtu 1500
grep -E '^(PASS|FAIL)' "$work/bad.out"
check "bad TX slots go out as netmap sends them (buffer 0; cut to 2048 bytes)" test $brc = 0
check "bad TX slots are counted: $IF_A TX ring 0 badSlots ${bad:-?} (want 2)" test "${bad:-}" = 2

# Interface deleted under traffic: a netmap receiver on one end of a veth
# pair and a netmap sender on the other, both through daemon A; the pair is
# deleted mid-transfer. Both programs must see the error (POLLERR / EIO) and
# end, the daemon must stay up and its pool (POOLSTAT) be back where it was.
expect 3
T0=${NET_TAG}t0
T1=${NET_TAG}t1
in_a ip link add "$T0" type veth peer name "$T1"
in_a ip link set "$T0" up
in_a ip link set "$T1" up
pool_before=$("$work/nm_faults" -d "$DEV_A" poolstat)
$RUN_A "$work/nmd-recv" -d "$DEV_A" -i "$T0" -l 60-1514 -T 30 -W 30 >"$work/vt.recv" 2>"$work/vt.rerr" &
vrp=$!
wait_line "$work/vt.rerr" ready
$RUN_A "$work/nmd-send" -d "$DEV_A" -i "$T1" -n 100000000 -l 60-1514 -R 50000 -q >"$work/vt.send" 2>&1 &
vsp=$!
sleep 1.5
in_a ip link del "$T0"
vt_ok=1
for _ in $(seq 100); do kill -0 $vrp 2>/dev/null || kill -0 $vsp 2>/dev/null || break; sleep 0.1; done
if kill -0 $vrp 2>/dev/null || kill -0 $vsp 2>/dev/null; then vt_ok=0; kill -KILL $vrp $vsp 2>/dev/null; fi
wait $vrp
vrrc=$?
wait $vsp
vsrc=$?
got=$(sed -n 's/^nmd-recv: \([0-9]*\) frames.*/\1/p' "$work/vt.recv")
tail -1 "$work/vt.rerr" "$work/vt.send" 2>/dev/null | grep -v '^$\|==>'
check "interface deleted under traffic: receiver (exit $vrrc, ${got:-?} frames before) and sender (exit $vsrc) get the error and end within 10 s" \
	test $vt_ok = 1 -a $vrrc != 0 -a $vsrc != 0
check "interface deleted under traffic: daemon A still running" kill -0 "$PID_A"
pool_after() { [ "$("$work/nm_faults" -d "$DEV_A" poolstat)" = "$pool_before" ]; }
check "interface deleted under traffic: pool back where it was ($pool_before)" eventually pool_after

expect 2
saved=$count
count=20000
nm_to_nm "$RUN_A" "$IF_A" "$RUN_B" "$IF_B" "after the deletions, the daemon still serves A -> B"
count=$saved
check "daemon A still running" kill -0 "$PID_A"

# ---- what a killed daemon leaves is removed at the next start ----
expect 5

$RUN_A "$work/nmd-recv" -d "$DEV_A" -i "$IF_A" -t 30 -W 30 >/dev/null 2>"$work/kill.err" &
rp=$!
wait_line "$work/kill.err" ready
kill -KILL "$PID_A"
wait "$PID_A" 2>/dev/null
wait $rp 2>/dev/null
check "after kill -9 the $stealer is still there (nobody removed it)" steal_present
umount -l "$DEV_A" 2>/dev/null
start_d || abort "netmapd restarts in $NS_H"
check "restart: the leftover $stealer is removed" absent steal_present
check "restart: the leftover clsact qdisc is removed" absent clsact_present
check "restart: the daemon said what it removed" grep -q "left by an earlier netmapd" "$LOG"
check "ping B -> A answered after the restart" ping_a

# ---- four queues, one ring each (both backends); the backend choice (AF_XDP) ----

if true; then
	expect 2
	QA=${NET_TAG}qa
	QB=${NET_TAG}qb
	QADDR_A=198.19.$(( $$ % 250 )).1
	QADDR_B=198.19.$(( $$ % 250 )).2
	ip link add "$QA" netns "$NS_A" numtxqueues 4 numrxqueues 4 type veth \
		peer name "$QB" netns "$NS_B" numtxqueues 4 numrxqueues 4
	in_a ip addr add "$QADDR_A/24" dev "$QA"
	in_b ip addr add "$QADDR_B/24" dev "$QB"
	in_a ip link set "$QA" up
	in_b ip link set "$QB" up
	in_a ethtool -K "$QA" tx off rx off >/dev/null 2>&1 || true
	in_b ethtool -K "$QB" tx off rx off >/dev/null 2>&1 || true
	$RUN_A "$work/pkt_errors" info "$DEV_A" "$QA" OK >"$work/q.info"
	cat "$work/q.info"
	check "PORT_INFO_GET on a 4-queue veth reports 4/4 rings" grep -q ' 4/4 rings' "$work/q.info"

	# One receiver per RX ring (netmap:IF-N), a sender on all four TX rings:
	# on veth the receiving queue is the sending queue.
	qcount=200000
	qrecv() {   # qrecv TAG FIRST_WAIT: a receiver on each of QA-0..3
		local q
		for q in 0 1 2 3; do
			$RUN_A "$work/nmd-recv" -d "$DEV_A" -i "$QA-$q" -l 60-1514 -T 3 -W "$2" >"$work/$1.$q.recv" 2>"$work/$1.$q.err" &
			eval "rq$q=\$!"
		done
		for q in 0 1 2 3; do wait_line "$work/$1.$q.err" ready; done
	}
	qwait() { local q; for q in 0 1 2 3; do eval "wait \$rq$q"; done; }
	frames_of() { sed -n 's/^nmd-recv: \([0-9]*\) frames.*/\1/p' "$1"; }
	clean_of() { grep -q 'bad 0, duplicate 0' "$1"; }

	qrecv all 15
	$RUN_B "$work/nmd-send" -d "$DEV_B" -i "$QB" -n $qcount -l 60-1514 -R "$rate" -q >"$work/all.send" 2>&1
	qwait
	cat "$work/all.send" "$work"/all.?.recv
	sum=0 nonzero=0 clean=1
	for q in 0 1 2 3; do
		n=$(frames_of "$work/all.$q.recv")
		sum=$((sum + ${n:-0}))
		[ "${n:-0}" -gt 0 ] && nonzero=$((nonzero + 1))
		clean_of "$work/all.$q.recv" || clean=0
	done
	if [ "$backend" = xdp ]; then
		check "4 queues: a receiver per RX ring gets its queue's frames, intact; the sum is what was sent ($sum of $qcount)" \
			test "$sum" = "$qcount" -a "$nonzero" = 4 -a "$clean" = 1
	else
		# AF_PACKET: the RX rings share the traffic by the queue it came on
		# (PACKET_FANOUT_QM); which queue a sender's frames take is the
		# kernel's choice, so only the sum is certain.
		check "4 queues: one receiver per RX ring (netmap:IF-N, as a multi-threaded program opens them), intact; the sum is what was sent ($sum of $qcount, $nonzero rings got some)" \
			test "$sum" = "$qcount" -a "$clean" = 1
	fi
fi

if [ "$backend" = xdp ]; then
	expect 7

	qrecv one 6
	$RUN_B "$work/nmd-send" -d "$DEV_B" -i "$QB-2" -n 20000 -l 60-1514 -q >"$work/one.send" 2>&1
	qwait
	got=""
	for q in 0 1 2 3; do got="$got $(frames_of "$work/one.$q.recv")"; done
	check "netmap:$QB-2 sends on queue 2 only: RX rings 0..3 of $QA got [$got ]" test "$got" = " 0 0 20000 0"

	# Queues nobody bound keep feeding the host stack (§7): bind one RX ring
	# at a time; exactly one of them is the queue the ping's flow uses.
	in_b ip neigh replace "$QADDR_A" lladdr "$(in_a ip -br link show "$QA" | awk '{print $3}')" dev "$QB" nud permanent
	in_a ip neigh replace "$QADDR_B" lladdr "$(in_b ip -br link show "$QB" | awk '{print $3}')" dev "$QA" nud permanent
	qping() { in_b ping -e 4242 -c 3 -i 0.2 -W 1 -q "$QADDR_A" >/dev/null 2>&1; }
	check "ping over the 4-queue pair answered with no netmap program" qping
	blocked=""
	for q in 0 1 2 3; do
		$RUN_A "$work/nmd-recv" -d "$DEV_A" -i "$QA-$q" -t 3 -W 3 >/dev/null 2>"$work/ping.$q.err" &
		rp=$!
		wait_line "$work/ping.$q.err" ready
		qping || blocked="$blocked $q"
		wait $rp
	done
	check "RX ring N bound: only queue N's traffic leaves the stack (ping's queue:$blocked)" \
		test "$(echo $blocked | wc -w)" = 1

	# --backend auto: AF_XDP where the driver runs XDP natively, AF_PACKET
	# elsewhere (lo) and for --packet-interface, with a line saying why.
	DEV_C=$work/c/netmap
	NET_BACKEND=auto net_start_daemon "$NS_A" "$DEV_C" "$work/c.log" -v --packet-interface "$QA" || abort "netmapd --backend auto starts"
	PID_C=$NET_DAEMON_PID
	$RUN_A "$work/pkt_errors" register "$DEV_C" "$IF_A" OK >/dev/null
	$RUN_A "$work/pkt_errors" register "$DEV_C" lo OK tx >/dev/null
	$RUN_A "$work/pkt_errors" register "$DEV_C" "$QA" OK >/dev/null
	net_stop_daemon "$PID_C"
	grep -E 'AF_XDP \(|AF_PACKET \(' "$work/c.log" | grep -v -E 'generic backend\): [0-9]|native backend\) where' || true
	check "auto: $IF_A (veth, native XDP) goes through AF_XDP" grep -q "$IF_A: AF_XDP (native backend)" "$work/c.log"
	check "auto: lo (no native XDP) falls back to AF_PACKET and says why" \
		grep -q "lo: AF_PACKET (generic backend): AF_XDP does not fit: its driver has no native XDP" "$work/c.log"
	check "auto: --packet-interface $QA forces AF_PACKET" \
		grep -q "$QA: AF_PACKET (generic backend): listed with --packet-interface" "$work/c.log"
	check "no XDP program left on $IF_A or $QA" absent eval 'steal_present "$IF_A" || steal_present "$QA"'
fi

# ---- an unpaced sender filling whole rings against a peer that pushes back ----
# B runs an XDP_DROP program with threaded NAPI, so frames to B go through a
# queue its NAPI thread empties. A txsync that cannot hand anything new to
# the kernel must still kick out what waits, or the ring never drains (found
# by make bench: AF_XDP copy mode transmits only inside sendto()). Each run
# sends for 1 s, 512 slots per sync, then waits for its rings to empty.
# XDP_DROP alone keeps up with any sender here, so B is made slow on
# purpose: its NAPI thread gets the idle scheduling class on the last CPU,
# which a busy loop holds while the sender runs (on CPU 0). A run counts
# only if the peer really pushed back: the sender found a ring with no free
# slot (nm_bench's full=N) or the kernel refused frames on the way to B
# ($IF_A's tx_dropped grew).
expect 1
if gcc -O2 -Wall -Werror -I "$root/Sources/ABI/CNetmapABI/include" -I "$root/tools" -o "$work/nm_bench" "$root/bench/nm_bench.c" &&
	gcc -O2 -Wall -Werror -o "$work/xdp_drop" "$root/bench/xdp_drop.c" -lbpf &&
	in_b "$work/xdp_drop" attach "$IF_B" >/dev/null; then
	for x in "$NS_A:$IF_A" "$NS_B:$IF_B"; do
		ip netns exec "${x%%:*}" sh -c "echo 1 > /sys/class/net/${x#*:}/threaded" 2>/dev/null || true
	done
	slow_cpu=$(( $(nproc) - 1 ))
	for p in $(ps -eo pid=,comm= | awk -v n="napi/$IF_B-" 'index($2, n) == 1 { print $1 }'); do
		taskset -p -c "$slow_cpu" "$p" >/dev/null && chrt --idle -p 0 "$p"
	done
	tx_dropped() { ip netns exec "$NS_A" cat "/sys/class/net/$IF_A/statistics/tx_dropped"; }
	drained=0
	pushed=0
	for i in 1 2 3 4 5; do
		d0=$(tx_dropped)
		taskset -c "$slow_cpu" timeout 3 sh -c 'while :; do :; done' &
		hog=$!
		taskset -c 0 timeout 30 $RUN_A "$work/nm_bench" tx -d "$DEV_A" -i "$IF_A" -t 1 -l 60 -b 512 >"$work/fullring.$i" 2>&1 &&
			drained=$((drained + 1))
		kill "$hog" 2>/dev/null
		wait "$hog" 2>/dev/null
		full=$(sed -n 's/^nm_bench tx: .* full=\([0-9]*\)$/\1/p' "$work/fullring.$i")
		refused=$(( $(tx_dropped) - d0 ))
		[ "${full:-0}" -gt 0 ] || [ "$refused" -gt 0 ] && pushed=$((pushed + 1))
		echo "run $i: $(cat "$work/fullring.$i"), $IF_A tx_dropped +$refused" >>"$work/fullring.out"
	done
	in_b "$work/xdp_drop" detach "$IF_B" >/dev/null
	for x in "$NS_A:$IF_A" "$NS_B:$IF_B"; do
		ip netns exec "${x%%:*}" sh -c "echo 0 > /sys/class/net/${x#*:}/threaded" 2>/dev/null || true
	done
	tail -5 "$work/fullring.out"
	check "unpaced full-ring sender against a pushing-back peer: its rings drain, 5 runs of 5 ($drained), the peer pushed back in each ($pushed)" \
		test "$drained" = 5 -a "$pushed" = 5
else
	result "full-ring sender: could not build bench/nm_bench.c or attach bench/xdp_drop.c on $IF_B" 0
fi

# ---- clean exit with a client still holding the port ----
expect 4

$RUN_A "$work/nmd-recv" -d "$DEV_A" -i "$IF_A" -t 30 -W 30 >/dev/null 2>"$work/term.err" &
rp=$!
wait_line "$work/term.err" ready
check "$stealer attached again" steal_present
net_stop_daemon "$PID_A"
wait $rp 2>/dev/null
check "SIGTERM with a client attached: $stealer removed at exit" absent steal_present
check "SIGTERM with a client attached: clsact removed at exit" absent clsact_present

# Every client of daemon B left its buffers where netmap wants them; the
# backend must have given back every buffer it held (the daemon reports a
# leak when its last client goes).
check "the pool was whole each time the last client left" absent grep -q 'last client gone: reclaimed' "$LOG"

finish
