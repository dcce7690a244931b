#!/usr/bin/env bash
# run-host-ring-tests.sh: host rings for real (issue #13), on one backend
# (NET_BACKEND=packet, default, or xdp). Namespaces A and B joined by a veth
# pair; one netmapd in a third namespace H (FUSE device); a netmap program
# in A (Tests/net/host_bridge.c) sits between A's interface and A's host
# stack, as netmap's one-interface bridge does. Checks:
#   - through the bridge (zero-copy swaps; copies; transparent mode with
#     NR_FORWARD/NS_FORWARD): ARP resolves, ping answers, a 100 MB TCP
#     transfer from B to a listener in A arrives byte-exact (sha256);
#   - host TX directly: frames a program puts on the host TX ring reach A's
#     stack as received on the interface (a plain socket in A sees them
#     byte-exact); slots with a bad buffer index, a runt or an over-MTU
#     length are dropped, counted, never delivered;
#   - host RX directly: what A's stack sends on the interface fills the host
#     RX ring byte-exact and does not reach B;
#   - leftovers: after the program is SIGKILLed, and after the daemon is
#     SIGKILLed and restarted, `tc` shows no netmapd filter on the interface,
#     no nmh* TAP exists and ping over the plain interface works again.
#
#   Tests/net/run-host-ring-tests.sh [NETMAPD]
#
# Needs root, python3. Prints "ok - ..." / "not ok - ..." and a summary
# (Tests/lib/results.sh): exits non-zero if a check failed or fewer ran
# than expected.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
backend=${NET_BACKEND:-packet}
export NET_BACKEND=$backend
MB=${HOST_TCP_MB:-100}
. "$root/Tests/lib/results.sh"
results_init "host-ring-tests ($backend)"
abort() { expect 1; result "$1" 0 "${2:-}"; finish; }
[ "$(id -u)" = 0 ] || abort "run as root"

. "$root/Tests/lib/daemon.sh"
daemon_find "$root" "${1:-}" || abort "build netmapd"

NET_TAG=nh$$
. "$here/netns-lib.sh"
if [ "$backend" = xdp ]; then work=$(mktemp -d /dev/shm/netmapd-host.XXXXXX); else work=$(mktemp -d /tmp/netmapd-host.XXXXXX); fi
net_add_cleanup "rm -rf $work"
net_add_cleanup "umount -l $work/d/netmap"

cc() { gcc -O2 -Wall -Wextra -Werror -I "$root/Sources/ABI/CNetmapABI/include" -I "$root/tools" -o "$work/$1" "$2" || abort "build $2"; }
cc host_bridge "$here/host_bridge.c"
cc host_io "$here/host_io.c"
cc pkt_peer "$here/pkt_peer.c"

net_setup
NS_H="${NET_TAG}h"
ip netns add "$NS_H"
net_add_cleanup "ip netns del $NS_H"
RUN_A="nsenter --net=/run/netns/$NS_A"
DEV=$work/d/netmap
LOG=$work/d.log
start_d() { net_start_daemon "$NS_H" "$DEV" "$LOG" -v; }
start_d || abort "netmapd starts in $NS_H"
echo "host-ring-tests ($backend): $NS_A/$IF_A ($ADDR_A) <-> $NS_B/$IF_B ($ADDR_B), netmapd in $NS_H"

eventually() { local i; for i in $(seq 50); do "$@" && return 0; sleep 0.1; done; return 1; }
wait_line() { local i; for i in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# Nothing of ours on A's interface: no netmapd tc filter, no nmh* TAP.
clean_a() {
	local f
	f=$(in_a tc filter show dev "$IF_A" ingress; in_a tc filter show dev "$IF_A" egress)
	! grep -q netmapd <<<"$f" && ! in_a ip -br link | grep -q '^nmh'
}
ping_ok() { in_b ping -c 2 -i 0.2 -W 2 "$ADDR_A" >/dev/null 2>&1; }

# TCP: B sends MB megabytes of a seeded stream to a listener in A; both
# sides' sha256 must agree and the listener must have all of it.
tcp_py=$work/tcp.py
cat >"$tcp_py" <<'EOF'
import hashlib, socket, sys
mode, addr, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
total = mb << 20
if mode == "listen":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 5201)); s.listen(1); print("ready", file=sys.stderr, flush=True)
    s.settimeout(30); c, _ = s.accept(); c.settimeout(30)
    h = hashlib.sha256(); n = 0
    while True:
        b = c.recv(1 << 16)
        if not b: break
        h.update(b); n += len(b)
    print(n, h.hexdigest())
else:
    c = socket.create_connection((addr, 5201), timeout=30)
    h = hashlib.sha256(); block = hashlib.sha256(b"netmapd").digest() * 2048
    n = 0; i = 0
    while n < total:
        b = bytes([i & 0xff]) + block[1:]
        b = b[: min(len(b), total - n)]
        c.sendall(b); h.update(b); n += len(b); i += 1
    c.shutdown(socket.SHUT_WR); c.recv(1)
    print(n, h.hexdigest())
EOF

# bridge_case LABEL [host_bridge options]
bridge_case() {
	local label=$1; shift
	local out=$work/bridge.$$.$RANDOM
	$RUN_A "$work/host_bridge" -d "$DEV" -i "$IF_A" "$@" >"$out.out" 2>"$out.err" &
	local bp=$!
	if ! wait_line "$out.err" ready; then
		result "$label: bridge starts" 0 "$(cat "$out.err")"; kill $bp; return
	fi
	in_b ip neigh flush dev "$IF_B" >/dev/null 2>&1
	check "$label: ping from B answered through the host rings" ping_ok
	local mac; mac=$(in_a ip -br link show "$IF_A" | awk '{print $3}')
	check "$label: ARP in B resolved A's address to $mac" \
		bash -c "nsenter --net=/run/netns/$NS_B ip neigh show $ADDR_A dev $IF_B | grep -qi '$mac'"
	in_a python3 "$tcp_py" listen "$ADDR_A" "$MB" >"$out.lis" 2>"$out.lerr" &
	local lp=$!
	wait_line "$out.lerr" ready
	local t0=$SECONDS
	in_b timeout 120 python3 "$tcp_py" send "$ADDR_A" "$MB" >"$out.snd" 2>&1
	wait $lp
	local want; want=$(cat "$out.snd")
	check "$label: TCP $MB MB B -> A byte-exact ($((SECONDS - t0)) s; sent '$want', got '$(cat "$out.lis")')" \
		test -n "$want" -a "$want" = "$(cat "$out.lis")" -a "${want%% *}" = $((MB << 20))
	kill -TERM $bp; wait $bp
	local brc=$?
	check "$label: bridge exits 0 and moved frames both ways ($(cat "$out.out"))" \
		bash -c "[ $brc = 0 ] && grep -Eq 'nic->host [1-9][0-9]* host->nic [1-9]' '$out.out'"
	check "$label: after release, nothing of netmapd left on $IF_A" eventually clean_a
	check "$label: after release, ping over the plain interface works" ping_ok
}

expect 34
bridge_case "swap" 
bridge_case "copy" -c
bridge_case "NR_FORWARD" -f

# ---- host TX and host RX directly ----
check "baseline: ping without netmap" ping_ok
out=$work/io
# host_tx MODE: host_io MODE (tx or txfrag) puts 1000 stream-7 frames on
# the host TX ring while a plain socket on A's interface checks each one;
# sets host_tx_ok and host_tx_says (both programs' last lines).
host_tx() {
	$RUN_A "$work/pkt_peer" recv "$IF_A" 1000 60-1514 -s 7 -T 3 >"$out.$1.peer" 2>"$out.$1.perr" &
	local pp=$! txrc prc
	wait_line "$out.$1.perr" ready
	$RUN_A "$work/host_io" "$1" "$DEV" "$IF_A" 1000 >"$out.$1" 2>&1
	txrc=$?
	wait $pp
	prc=$?
	host_tx_ok=$([ $txrc = 0 ] && [ $prc = 0 ] && echo 1 || echo 0)
	host_tx_says="$(tail -1 "$out.$1"); $(tail -1 "$out.$1.peer")"
}
host_tx tx
check "host TX: 1000 frames reach A's stack as received on $IF_A, byte-exact ($host_tx_says)" test $host_tx_ok = 1
check "host TX: bad buffer, runt and over-MTU slots dropped and counted (daemon: $(grep -o 'host TX ring: [0-9]* frames dropped' "$LOG" | tail -1))" \
	eventually grep -q 'host TX ring: 3 frames dropped' "$LOG"
# NS_MOREFRAG chains on the host TX ring: one frame each at the stack.
host_tx txfrag
check "host TX: 1000 frames, 666 of them NS_MOREFRAG chains, reach A's stack whole and byte-exact ($host_tx_says)" \
	test $host_tx_ok = 1

$RUN_A "$work/host_io" rx "$DEV" "$IF_A" 1000 >"$out.rx" 2>"$out.rerr" &
hp=$!
wait_line "$out.rerr" ready
in_b "$work/pkt_peer" recv "$IF_B" 1 60 -s 9 -T 2 >"$out.b" 2>&1 &
bp=$!
sleep 0.3
$RUN_A "$work/pkt_peer" send "$IF_A" 1000 60-1514 -s 9 -R 20000 >/dev/null 2>&1
wait $hp
hrc=$?
check "host RX: 1000 frames A's stack sent on $IF_A fill the host RX ring byte-exact ($(tail -1 "$out.rx"; tail -1 "$out.rerr"))" test $hrc = 0
wait $bp
brc=$?
check "host RX: none of them reached B (the wire)" test $brc != 0

# ---- registration modes ----
$RUN_A "$work/host_io" modes "$DEV" "$IF_A" >"$out.modes" 2>&1
mrc=$?
child_results "host-ring modes" $mrc "$out.modes" 12

# Two host ring pairs: the stack's frames reach the host RX rings (the TAP
# queue of each is chosen by flow hash), all of them byte-exact.
check "host RX with 2 host ring pairs: 1000 frames the stack sent arrive byte-exact over the host RX rings" bash -c "
	nsenter --net=/run/netns/$NS_A '$work/host_io' rx '$DEV' '$IF_A' 1000 2 >'$out.rx2' 2>'$out.rx2e' & p=\$!
	for i in \$(seq 100); do grep -q ready '$out.rx2e' && break; sleep 0.05; done
	nsenter --net=/run/netns/$NS_A '$work/pkt_peer' send '$IF_A' 1000 60-1514 -s 9 -R 20000 >/dev/null 2>&1
	wait \$p; r=\$?; cat '$out.rx2' '$out.rx2e' >&2; [ \$r = 0 ]"

# ---- leftovers after SIGKILL ----
$RUN_A "$work/host_bridge" -d "$DEV" -i "$IF_A" >/dev/null 2>"$out.k1" &
bp=$!
check "bridge running: ping works" bash -c "grep -q ready '$out.k1' || sleep 1; grep -q ready '$out.k1' && nsenter --net=/run/netns/$NS_B ping -c 2 -i 0.2 -W 2 $ADDR_A >/dev/null"
kill -KILL $bp; wait $bp 2>/dev/null
check "client SIGKILLed: nothing of netmapd left on $IF_A" eventually clean_a
check "client SIGKILLed: ping over the plain interface works" ping_ok

$RUN_A "$work/host_bridge" -d "$DEV" -i "$IF_A" >/dev/null 2>"$out.k2" &
bp=$!
wait_line "$out.k2" ready
check "bridge running before the daemon is killed: its egress filter is on $IF_A" \
	bash -c "nsenter --net=/run/netns/$NS_A tc filter show dev $IF_A egress | grep -q netmapd_hostrx"
kill -KILL "$NET_DAEMON_PID"; wait "$NET_DAEMON_PID" 2>/dev/null
kill -KILL $bp 2>/dev/null; wait $bp 2>/dev/null
umount -l "$DEV" 2>/dev/null
check "daemon SIGKILLed: its egress filter is still there (what restart must clean)" \
	bash -c "nsenter --net=/run/netns/$NS_A tc filter show dev $IF_A egress | grep -q netmapd"
start_d
check "daemon restarted: it logged the removal" grep -q "netmapd_hostrx.*left by an earlier\|left by an earlier.*netmapd_hostrx\|removed a tc egress filter" "$LOG"
check "daemon restarted: nothing of netmapd left on $IF_A" eventually clean_a
check "daemon restarted: ping over the plain interface works" ping_ok
check "daemon restarted: a bridge works again" bash -c "
	nsenter --net=/run/netns/$NS_A '$work/host_bridge' -d '$DEV' -i '$IF_A' >/dev/null 2>'$out.k3' & p=\$!
	for i in \$(seq 50); do grep -q ready '$out.k3' && break; sleep 0.1; done
	grep -q ready '$out.k3' && nsenter --net=/run/netns/$NS_B ping -c 2 -i 0.2 -W 2 $ADDR_A >/dev/null; r=\$?
	kill \$p; wait \$p; exit \$r"
grep -E "host|TAP|error" "$LOG" | tail -5 >&2
finish
