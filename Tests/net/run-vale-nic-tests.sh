#!/usr/bin/env bash
# run-vale-nic-tests.sh: network interfaces attached to a VALE switch (issue
# #15), with each backend (AF_PACKET, then AF_XDP).
#
# Three namespaces: H runs netmapd and holds the host ends of two veth pairs,
# whose other ends are in X and Y with addresses of one subnet. Nothing in H
# connects the two pairs: only the switch does, once both host ends are
# attached to vale1 (VALE_ATTACH from H, where the names are H's). Per
# backend:
#   - both attach (nm_vale attach), and an attached NIC belongs to the switch
#     (VALE_LIST finds it; REGISTER of it or of its switch port, attaching it
#     elsewhere: EBUSY);
#   - ping from X to Y, and a 10 MB TCP transfer whose SHA-256 the receiver
#     returns (TX checksum offload is turned off on the veth ends in X and Y:
#     AF_PACKET and AF_XDP see frames before the checksum is filled in, as
#     netmap's own generic adapter does);
#   - after VALE_DETACH of one end, ping fails (nothing else bridges them);
#   - X's host end attached to vale2 with its host rings (NR_REG_NIC_SW, a
#     second port vale2:IF^): X pings H's own address on that interface,
#     which only the switch connects (NIC port <-> host port);
#   - the daemon SIGKILLed with both attached and started again: the XDP
#     program or tc filter it left is gone and ping fails;
#   - the daemon stopped (SIGTERM) with both attached: exit 0, both
#     detached (nothing left on the interfaces, no ping).
# Ends with "vale-nic-tests: N passed, M failed" (Tests/lib/results.sh).
#
#   Tests/net/run-vale-nic-tests.sh [NETMAPD]      needs root, python3, ethtool
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/Tests/lib/results.sh"
. "$root/Tests/lib/daemon.sh"
results_init vale-nic-tests
abort() { expect 1; result "$1" 0 "${2:-}"; finish; }
[ "$(id -u)" = 0 ] || abort "run as root"

daemon_find "$root" "${1:-}" || abort "build netmapd"

tag=vn$$
NS_H=${tag}h NS_X=${tag}x NS_Y=${tag}y
IF_X=${tag}x0 IF_Y=${tag}y0
ADDR_X=198.19.$(( $$ % 250 )).1 ADDR_Y=198.19.$(( $$ % 250 )).2 ADDR_H=198.19.$(( $$ % 250 )).3
work=$(mktemp -d /dev/shm/netmapd-vale-nic.XXXXXX)   # AF_XDP wants the region on tmpfs
pid=
cleanup() {
	[ -z "$pid" ] || daemon_stop "$pid" 5
	umount -l "$work/netmap" 2>/dev/null
	for n in $NS_H $NS_X $NS_Y; do ip netns del "$n" 2>/dev/null; done
	if [ "$results_failed" = 0 ]; then rm -rf "$work"; else echo "vale-nic-tests: logs in $work" >&2; fi
}
trap cleanup EXIT

gcc -O2 -Wall -Wextra -Werror -pthread -I "$root/Sources/ABI/CNetmapABI/include" -o "$work/nm_vale" \
	"$root/Tests/device/nm_vale.c" || abort "build nm_vale"
command -v ethtool >/dev/null && command -v python3 >/dev/null || abort "needs ethtool and python3"

in_h() { nsenter --net="/run/netns/$NS_H" "$@"; }   # network only: the FUSE mount stays visible
in_x() { nsenter --net="/run/netns/$NS_X" "$@"; }
in_y() { nsenter --net="/run/netns/$NS_Y" "$@"; }
ip netns add "$NS_H" && ip netns add "$NS_X" && ip netns add "$NS_Y" || abort "create namespaces"
ip -n "$NS_H" link add "$IF_X" type veth peer name x1 netns "$NS_X" &&
	ip -n "$NS_H" link add "$IF_Y" type veth peer name y1 netns "$NS_Y" || abort "create veth pairs"
for i in "$IF_X" "$IF_Y"; do ip -n "$NS_H" link set "$i" up; done
ip -n "$NS_H" addr add "$ADDR_H/24" dev "$IF_X"   # H's stack, reachable from X only through a switch
ip -n "$NS_X" addr add "$ADDR_X/24" dev x1 && ip -n "$NS_X" link set x1 up
ip -n "$NS_Y" addr add "$ADDR_Y/24" dev y1 && ip -n "$NS_Y" link set y1 up
in_x ethtool -K x1 tx off >/dev/null 2>&1
in_y ethtool -K y1 tx off >/dev/null 2>&1

dev=$work/netmap
nmv() { in_h "$work/nm_vale" -d "$dev" "$@" >>"$work/nm_vale.log" 2>&1; }
ping_xy() { in_x ping -c "${1:-3}" -i 0.2 -W 1 -q "$ADDR_Y" >/dev/null 2>&1; }
start() {
	daemon_start "$work/$1.log" "grep -q 'is ready' '$work/$1.log'" 20 \
		nsenter --net="/run/netns/$NS_H" "$NETMAPD" --frontend fuse --device "$dev" --run-dir "$work/run" --backend "$2" -v
	local rc=$?
	pid=$DAEMON_PID
	return $rc
}
leftover() {   # something of netmapd still on the host end of X's pair
	in_h ip link show "$IF_X" | grep -q ' xdp' && return 0
	[ -n "$(in_h tc filter show dev "$IF_X" ingress 2>/dev/null)" ]
}

tcp_transfer() {
	cat >"$work/tcp.py" <<'EOF'
import hashlib, socket, sys, time
mode, addr, n = sys.argv[1], sys.argv[2], 10 * 1024 * 1024
if mode == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 5901)); s.listen(1); s.settimeout(30)
    c, _ = s.accept(); c.settimeout(30); h = hashlib.sha256(); got = 0
    while got < n:
        b = c.recv(65536)
        if not b: break
        h.update(b); got += len(b)
    c.sendall(h.hexdigest().encode()); c.close()
else:
    data = bytes((i * 7 + 3) & 0xff for i in range(65536)) * (n // 65536)
    for attempt in range(100):   # the server may still be starting
        try:
            s = socket.create_connection((addr, 5901), timeout=30)
            break
        except ConnectionRefusedError:
            time.sleep(0.1)
    s.sendall(data); s.shutdown(socket.SHUT_WR)
    sys.exit(0 if s.recv(100).decode() == hashlib.sha256(data).hexdigest() else 1)
EOF
	in_y timeout 60 python3 "$work/tcp.py" server "$ADDR_Y" >>"$work/tcp.log" 2>&1 &
	local sp=$!
	sleep 0.5
	in_x timeout 60 python3 "$work/tcp.py" client "$ADDR_Y" >>"$work/tcp.log" 2>&1
	local rc=$?
	wait $sp
	return $rc
}

for backend in packet xdp; do
	expect 9
	if ! start "netmapd-$backend" $backend; then
		result "$backend: netmapd starts" 0
		continue
	fi
	check "$backend: VALE_ATTACH vale1:$IF_X and vale1:$IF_Y" eval "nmv attach vale1:$IF_X && nmv attach vale1:$IF_Y"
	check "$backend: an attached NIC belongs to the switch (VALE_LIST, EBUSY for REGISTER and a second attach)" \
		nmv owned "vale1:$IF_X"
	check "$backend: ping X -> Y through the switch" ping_xy 3
	check "$backend: 10 MB over TCP X -> Y, byte-exact (SHA-256)" tcp_transfer
	nmv detach "vale1:$IF_Y"
	check "$backend: after VALE_DETACH of Y's end, no ping" eval '! ping_xy 2'
	nmv attach "vale1:$IF_Y"
	check "$backend: attached again, ping" ping_xy 2
	# The host stack as a switch port: X's host end attached with its host
	# rings (NR_REG_NIC_SW) to a switch of its own; H's address on it answers
	# X's ping only through the switch (NIC port -> host port and back).
	nmv detach "vale1:$IF_X"
	# Three rounds with the host rings: the NIC port and the host port share
	# one registration, and a frame left behind by one port's sync (a lost
	# wake-up) showed as a ping lost in about one round of eight.
	host_rounds() {
		local r
		for r in 1 2 3; do
			nmv attach-host "vale2:$IF_X" && in_x ping -c 3 -i 0.2 -W 1 -q "$ADDR_H" >/dev/null 2>&1 || return 1
			nmv detach "vale2:$IF_X" || return 1
		done
	}
	check "$backend: X's end on vale2 without host rings cuts H's stack off (no ping); with them (NR_REG_NIC_SW, port vale2:IF^) X pings H's stack through the switch, 3 rounds of attach and detach" \
		eval 'nmv attach vale2:$IF_X && ! in_x ping -c 2 -i 0.2 -W 1 -q $ADDR_H >/dev/null 2>&1 &&
			nmv detach vale2:$IF_X && host_rounds'
	nmv detach "vale2:$IF_X" 2>/dev/null
	nmv attach "vale1:$IF_X"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	pid=
	umount -l "$dev" 2>/dev/null
	# The killed daemon left its XDP program or tc filter (so the check below can fail).
	left=0
	leftover && left=1
	if start "netmapd-$backend-restart" $backend; then
		check "$backend: SIGKILL and restart leave nothing attached (what the killed daemon left is removed, no ping)" \
			eval '[ $left = 1 ] && ! leftover && ! ping_xy 2'
		# Stopped (SIGTERM) with both attached: a clean exit that detaches them.
		nmv attach "vale1:$IF_X"
		nmv attach "vale1:$IF_Y"
		attached=0
		leftover && ping_xy 1 && attached=1
		daemon_stop "$pid" 10
		check "$backend: SIGTERM with NICs attached: exit 0, they are detached (nothing left, no ping)" \
			eval '[ $attached = 1 ] && [ "$DAEMON_RC" = 0 ] && ! leftover && ! ping_xy 2'
	else
		result "$backend: netmapd restarts" 0
	fi
	pid=
done
finish
