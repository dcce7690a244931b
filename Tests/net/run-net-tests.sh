#!/usr/bin/env bash
# run-net-tests.sh: a backend against real interfaces — the generic one
# (AF_PACKET, default) or, with NET_BACKEND=xdp, the native one (AF_XDP;
# Tests/net/run-xdp-tests.sh). The same checks run for both (among them an
# interface deleted while registered and one deleted under traffic: errors
# for the clients, daemon up, POOLSTAT back, via Tests/device/nm_faults),
# plus, for the native backend, a veth pair with four queues (ring N is
# queue N) and the per-interface backend choice of --backend auto.
# Two network namespaces joined by a veth pair; a netmapd per namespace
# (started with nsenter --net only, so the FUSE devices stay visible to
# every process); netmap programs of the project's own (tools/nmd-send,
# tools/nmd-recv) and a plain-socket peer (pkt_peer) on either end.
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
# Needs root. Prints one line per check and "net-tests: N passed, M failed";
# exits non-zero if any check failed. Everything it creates (namespaces,
# daemons, mounts) goes away on exit, however it exits.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
count=${NET_COUNT:-1000000}
rate=${NET_RATE:-120000}
backend=${NET_BACKEND:-packet}
export NET_BACKEND=$backend
case $backend in packet|xdp) ;; *) echo "net-tests: NET_BACKEND must be packet or xdp" >&2; exit 2 ;; esac

[ "$(id -u)" = 0 ] || { echo "net-tests: needs root" >&2; exit 1; }

NETMAPD=${1:-${NETMAPD:-}}
if [ -z "$NETMAPD" ]; then
	echo "net-tests: building netmapd" >&2
	swift build --package-path "$root" --scratch-path "$root/.build-pkt" --product netmapd >&2 || exit 1
	NETMAPD=$(swift build --package-path "$root" --scratch-path "$root/.build-pkt" --show-bin-path)/netmapd
fi
NETMAPD=$(readlink -f "$NETMAPD")

. "$here/netns-lib.sh"
# AF_XDP pins the region's pages: its file must be on tmpfs.
if [ "$backend" = xdp ]; then
	work=$(mktemp -d /dev/shm/netmapd-net-tests.XXXXXX)
else
	work=$(mktemp -d /tmp/netmapd-net-tests.XXXXXX)
fi
net_add_cleanup "rm -rf $work"
net_add_cleanup "for m in $work/*/netmap; do umount -l \$m; done"

cc() { gcc -O2 -Wall -Wextra -Werror -I "$root/Sources/ABI/include" -I "$root/tools" -o "$work/$1" "$2" || exit 1; }
cc nmd-send "$root/tools/nmd-send.c"
cc nmd-recv "$root/tools/nmd-recv.c"
cc pkt_peer "$here/pkt_peer.c"
cc pkt_errors "$here/pkt_errors.c"
gcc -O2 -Wall -Wextra -Werror -pthread -I "$root/Sources/ABI/include" -o "$work/nm_faults" "$root/Tests/device/nm_faults.c" || exit 1

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
start_a() { net_start_daemon "$NS_A" "$DEV_A" "$work/a.log" -v --$backend-rx-frames "$rx_frames" && PID_A=$NET_DAEMON_PID; }
start_b() { net_start_daemon "$NS_B" "$DEV_B" "$work/b.log" -v --$backend-rx-frames "$rx_frames" && PID_B=$NET_DAEMON_PID; }
start_a || exit 1
start_b || exit 1
MAC_A=$(in_a ip -br link show "$IF_A" | awk '{print $3}')
echo "net-tests ($backend): $NS_A/$IF_A ($ADDR_A, $MAC_A) <-> $NS_B/$IF_B ($ADDR_B); $count frames per transfer, pace ${rate} pps"

# ---- transfers ----

# nm_to_nm SRC_DEV SRC_IF DST_DEV DST_IF LABEL
nm_to_nm() {
	local out=$work/xfer.$5
	"$work/nmd-recv" -d "$3" -i "$4" -n "$count" -l 60-1514 -T 3 ${RECV_ARGS:-} >"$out.recv" 2>"$out.err" &
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
# A receiver that gives every slot back with another buffer (NS_BUF_CHANGED),
# as a zero-copy forwarder does.
saved=$count
count=$(( count < 200000 ? count : 200000 ))
RECV_ARGS="-x 4096" nm_to_nm "$DEV_B" "$IF_B" "$DEV_A" "$IF_A" "netmap B -> netmap A, receiver swapping buffers"
count=$saved

# ---- the port's own transmissions do not come back on its RX rings ----

"$work/nmd-recv" -d "$DEV_A" -i "$IF_A" -t 3 -W 3 >"$work/own.recv" 2>"$work/own.err" &
rp=$!
wait_line "$work/own.err" ready
"$work/nmd-send" -d "$DEV_A" -i "$IF_A" -n 20000 -l 60-1514 -q >/dev/null 2>&1
wait $rp
cat "$work/own.recv"
check "20000 frames sent on $IF_A: none shows up on $IF_A's RX ring" grep -q '^nmd-recv: 0 frames' "$work/own.recv"

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

check "ping B -> A answered before any netmap program" eventually ping_a 1
# The peer knows A's MAC, so the echo requests themselves reach A's port.
in_b ip neigh replace "$ADDR_A" lladdr "$MAC_A" dev "$IF_B" nud permanent
"$work/nmd-recv" -d "$DEV_A" -i "$IF_A" -t 6 -W 6 >"$work/steal.recv" 2>"$work/steal.err" &
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

# Interface deleted under traffic: a netmap receiver on one end of a veth
# pair and a netmap sender on the other, both through daemon A; the pair is
# deleted mid-transfer. Both programs must see the error (POLLERR / EIO) and
# end, the daemon must stay up and its pool (POOLSTAT) be back where it was.
T0=${NET_TAG}t0
T1=${NET_TAG}t1
in_a ip link add "$T0" type veth peer name "$T1"
in_a ip link set "$T0" up
in_a ip link set "$T1" up
pool_before=$("$work/nm_faults" -d "$DEV_A" poolstat)
"$work/nmd-recv" -d "$DEV_A" -i "$T0" -l 60-1514 -T 30 -W 30 >"$work/vt.recv" 2>"$work/vt.rerr" &
vrp=$!
wait_line "$work/vt.rerr" ready
"$work/nmd-send" -d "$DEV_A" -i "$T1" -n 100000000 -l 60-1514 -R 50000 -q >"$work/vt.send" 2>&1 &
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

saved=$count
count=20000
nm_to_nm "$DEV_A" "$IF_A" "$DEV_B" "$IF_B" "after the deletions, the daemon still serves A -> B"
count=$saved
check "daemon A still running" kill -0 "$PID_A"

# ---- what a killed daemon leaves is removed at the next start ----

"$work/nmd-recv" -d "$DEV_A" -i "$IF_A" -t 30 -W 30 >/dev/null 2>"$work/kill.err" &
rp=$!
wait_line "$work/kill.err" ready
kill -KILL "$PID_A"
wait "$PID_A" 2>/dev/null
wait $rp 2>/dev/null
check "after kill -9 the $stealer is still there (nobody removed it)" steal_present
umount -l "$DEV_A" 2>/dev/null
start_a || exit 1
check "restart: the leftover $stealer is removed" absent steal_present
check "restart: the leftover clsact qdisc is removed" absent clsact_present
grep -q "left by an earlier netmapd" "$work/a.log" && pass "restart: the daemon said what it removed" || fail "restart: the daemon said what it removed"
check "ping B -> A answered after the restart" ping_a

# ---- AF_XDP only: four queues, one ring each; the backend choice ----

if [ "$backend" = xdp ]; then
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
	"$work/pkt_errors" info "$DEV_A" "$QA" OK >"$work/q.info"
	cat "$work/q.info"
	check "PORT_INFO_GET on a 4-queue veth reports 4/4 rings" grep -q ' 4/4 rings' "$work/q.info"

	# One receiver per RX ring (netmap:IF-N), a sender on all four TX rings:
	# on veth the receiving queue is the sending queue.
	qcount=200000
	qrecv() {   # qrecv TAG FIRST_WAIT: a receiver on each of QA-0..3
		local q
		for q in 0 1 2 3; do
			"$work/nmd-recv" -d "$DEV_A" -i "$QA-$q" -l 60-1514 -T 3 -W "$2" >"$work/$1.$q.recv" 2>"$work/$1.$q.err" &
			eval "rq$q=\$!"
		done
		for q in 0 1 2 3; do wait_line "$work/$1.$q.err" ready; done
	}
	qwait() { local q; for q in 0 1 2 3; do eval "wait \$rq$q"; done; }
	frames_of() { sed -n 's/^nmd-recv: \([0-9]*\) frames.*/\1/p' "$1"; }
	clean_of() { grep -q 'bad 0, duplicate 0' "$1"; }

	qrecv all 15
	"$work/nmd-send" -d "$DEV_B" -i "$QB" -n $qcount -l 60-1514 -R "$rate" -q >"$work/all.send" 2>&1
	qwait
	cat "$work/all.send" "$work"/all.?.recv
	sum=0 nonzero=0 clean=1
	for q in 0 1 2 3; do
		n=$(frames_of "$work/all.$q.recv")
		sum=$((sum + ${n:-0}))
		[ "${n:-0}" -gt 0 ] && nonzero=$((nonzero + 1))
		clean_of "$work/all.$q.recv" || clean=0
	done
	check "4 queues: a receiver per RX ring gets its queue's frames, intact; the sum is what was sent ($sum of $qcount)" \
		test "$sum" = "$qcount" -a "$nonzero" = 4 -a "$clean" = 1

	qrecv one 6
	"$work/nmd-send" -d "$DEV_B" -i "$QB-2" -n 20000 -l 60-1514 -q >"$work/one.send" 2>&1
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
		"$work/nmd-recv" -d "$DEV_A" -i "$QA-$q" -t 3 -W 3 >/dev/null 2>"$work/ping.$q.err" &
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
	NET_BACKEND=auto net_start_daemon "$NS_A" "$DEV_C" "$work/c.log" -v --packet-interface "$QA" || exit 1
	PID_C=$NET_DAEMON_PID
	"$work/pkt_errors" register "$DEV_C" "$IF_A" OK >/dev/null
	"$work/pkt_errors" register "$DEV_C" lo OK tx >/dev/null
	"$work/pkt_errors" register "$DEV_C" "$QA" OK >/dev/null
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
# B runs an XDP_DROP program with threaded NAPI, so the veth's queue to B
# fills and the kernel refuses frames for a while (EBUSY/EAGAIN): the
# descriptors wait in the socket's TX ring. A txsync that cannot queue
# anything new must still kick them out, or the ring never drains (found by
# make bench: AF_XDP copy mode transmits only inside sendto()). Each run
# sends for 1 s, 512 slots per sync, then waits for its rings to empty.
if gcc -O2 -Wall -Werror -I "$root/Sources/ABI/include" -I "$root/tools" -o "$work/nm_bench" "$root/bench/nm_bench.c" &&
	gcc -O2 -Wall -Werror -o "$work/xdp_drop" "$root/bench/xdp_drop.c" -lbpf &&
	in_b "$work/xdp_drop" attach "$IF_B" >/dev/null; then
	for x in "$NS_A:$IF_A" "$NS_B:$IF_B"; do
		ip netns exec "${x%%:*}" sh -c "echo 1 > /sys/class/net/${x#*:}/threaded" 2>/dev/null || true
	done
	drained=0
	for i in 1 2 3 4 5; do
		timeout 30 "$work/nm_bench" tx -d "$DEV_A" -i "$IF_A" -t 1 -l 60 -b 512 >>"$work/fullring.out" 2>&1 && drained=$((drained + 1))
	done
	in_b "$work/xdp_drop" detach "$IF_B" >/dev/null
	for x in "$NS_A:$IF_A" "$NS_B:$IF_B"; do
		ip netns exec "${x%%:*}" sh -c "echo 0 > /sys/class/net/${x#*:}/threaded" 2>/dev/null || true
	done
	check "unpaced full-ring sender against a pushing-back peer: its rings drain, 5 runs of 5 ($drained)" \
		test "$drained" = 5 || tail -3 "$work/fullring.out"
else
	fail "full-ring sender: could not build bench/nm_bench.c or attach bench/xdp_drop.c on $IF_B"
fi

# ---- clean exit with a client still holding the port ----

"$work/nmd-recv" -d "$DEV_A" -i "$IF_A" -t 30 -W 30 >/dev/null 2>"$work/term.err" &
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
check "daemon B: the pool was whole each time its last client left" absent grep -q 'last client gone: reclaimed' "$work/b.log"

echo "net-tests: $passed passed, $failed failed"
[ "$failed" = 0 ]
