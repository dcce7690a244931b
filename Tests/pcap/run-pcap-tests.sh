#!/usr/bin/env bash
# run-pcap-tests.sh: libpcap and tcpdump as netmapd's clients. Debian's
# libpcap source package rebuilt with its netmap backend against netmapd's
# headers (build-libpcap.sh; cached, so a rerun does not rebuild), and
# Debian's unmodified /usr/bin/tcpdump run with that library on
# LD_LIBRARY_PATH, for each backend (AF_PACKET, then AF_XDP):
#
#   - the net tests' fixture (Tests/net/netns-lib.sh): namespaces A and B
#     joined by a veth pair, one netmapd (FUSE file) in a third namespace;
#   - tcpdump runs in A inside a private mount namespace whose /dev/netmap is
#     the daemon's device (bind-mounted over an empty file on a private
#     /dev), so libpcap opens "/dev/netmap" as it always does:
#       tcpdump -i netmap:IF_A -U -w FILE 'ether proto 0x88b5 and ether[18:4] = 0x01000000'
#   - from B, a plain AF_PACKET sender (Tests/net/pkt_peer) sends 10000 test
#     frames of stream 1 and, at the same time, 5000 of stream 2 that the
#     filter must drop; stopped with SIGINT once its file stops growing,
#     tcpdump must exit 0 having seen 15000 packets (or a few more: IPv6
#     neighbour discovery) and captured 10000, and
#     the file must hold exactly the 10000 stream-1 frames, byte for byte
#     (pcap_check.c), and nothing else. (Not -c 10000: libpcap's netmap
#     backend counts the frames its filter dropped towards pcap_loop's count,
#     with the netmap module as with netmapd, so tcpdump would stop early);
#   - pcap_inject: pcap_send.c, linked to that libpcap, injects 10000 frames
#     on netmap:IF_A; pkt_peer in B must receive every one byte-exact;
#   - the backend really was the one asked for (AF_XDP: netmapd's XDP
#     program on IF_A while capturing; AF_PACKET: none).
#
#   Tests/pcap/run-pcap-tests.sh [NETMAPD]
#
# Cost: the first run builds libpcap (~1 min on one core, plus apt-get
# source); then about 20 s for both backends. Needs root. Ends with
# "pcap-tests: N passed, M failed" (Tests/lib/results.sh).
#
# Environment: PCAP_COUNT (10000) frames captured and injected; PCAP_RATE
# (50000) the sender's pace in frames/s; PCAP_BACKENDS ("packet xdp").
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
count=${PCAP_COUNT:-10000}
noise=$((count / 2))
rate=${PCAP_RATE:-50000}
backends=${PCAP_BACKENDS:-packet xdp}
sizes=60-1514
. "$root/Tests/lib/results.sh"
results_init pcap-tests
abort() { expect 1; result "$1" 0 "${2:-}"; finish; }
[ "$(id -u)" = 0 ] || abort "run as root"
command -v tcpdump >/dev/null || abort "tcpdump installed (scripts/install-deps.sh pcap)"

NETMAPD=${1:-${NETMAPD:-$root/.build/debug/netmapd}}
[ -x "$NETMAPD" ] || abort "netmapd binary" "$NETMAPD is not executable (swift build --product netmapd)"
NETMAPD=$(readlink -f "$NETMAPD")

expect 2
lib=$("$here/build-libpcap.sh")
check "Debian's libpcap source rebuilt with its netmap backend against netmapd's headers ($lib)" test -n "$lib" || finish
resolved=$(LD_LIBRARY_PATH=$lib ldd /usr/bin/tcpdump | awk '/libpcap/ {print $3}')
check "Debian's /usr/bin/tcpdump loads it with LD_LIBRARY_PATH ($resolved)" test "$resolved" = "$lib/libpcap.so.0.8"

. "$root/Tests/net/netns-lib.sh"
# AF_XDP pins the region's pages: its file must be on tmpfs.
work=$(mktemp -d /dev/shm/netmapd-pcap-tests.XXXXXX)
net_add_cleanup "rm -rf $work"
net_add_cleanup "umount -l $work/d/netmap"
net_setup
NS_H="${NET_TAG}h"
ip netns add "$NS_H"
net_add_cleanup "ip netns del $NS_H"

abi="-I $root/Sources/ABI/CNetmapABI/include"
gcc -O2 -Wall -Wextra -Werror $abi -o "$work/pkt_peer" "$root/Tests/net/pkt_peer.c" || abort "build pkt_peer.c"
gcc -O2 -Wall -Wextra -Werror $abi -o "$work/pcap_check" "$here/pcap_check.c" || abort "build pcap_check.c"
gcc -O2 -Wall -Wextra -Werror $abi -I "$lib/../include" -o "$work/pcap_send" "$here/pcap_send.c" \
	-L "$lib" -l:libpcap.so.0.8 || abort "build pcap_send.c"

# CMD in namespace A, in a mount namespace of its own whose /dev holds only
# null, zero, random, urandom, shm (where the work directory is) and netmap
# (the daemon's device). The old /dev is parked under $stage (not in /dev).
# CMD's pid (the shell's, which CMD replaces) goes to $stage/pid.
stage=$(mktemp -d /tmp/netmapd-pcap-stage.XXXXXX)
net_add_cleanup "rm -f $stage/pid; rmdir $stage/olddev $stage"
in_a_with_dev() {
	in_a unshare --mount --propagation private sh -c '
		stage=$0; dev=$1; shift
		mkdir -p "$stage/olddev" && mount --rbind /dev "$stage/olddev" && mount -t tmpfs pcapdev /dev || exit 125
		for n in null zero random urandom; do : >/dev/$n && mount --bind "$stage/olddev/$n" /dev/$n || exit 125; done
		mkdir /dev/shm && mount --rbind "$stage/olddev/shm" /dev/shm || exit 125
		: >/dev/netmap && mount --bind "$dev" /dev/netmap || exit 125
		echo $$ >"$stage/pid"
		exec "$@"' "$stage" "$DEV" "$@"
}

wait_line() {  # FILE PATTERN SECONDS
	local i
	for (( i = 0; i < $3 * 10; i++ )); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

DEV=$work/d/netmap
filter='ether proto 0x88b5 and ether[18:4] = 0x01000000'
for backend in $backends; do
	expect 8
	log=$work/$backend.d.log
	NET_BACKEND=$backend net_start_daemon "$NS_H" "$DEV" "$log" -v --$backend-rx-frames 32768
	pid=$NET_DAEMON_PID
	check "$backend: netmapd starts" kill -0 "$pid" || { cat "$log"; continue; }

	cap=$work/$backend.pcap
	in_a_with_dev env LD_LIBRARY_PATH="$lib" tcpdump -i "netmap:$IF_A" -U -w "$cap" -Z root -n "$filter" \
		>"$work/$backend.tcpdump.out" 2>"$work/$backend.tcpdump.err" &
	tp=$!
	wait_line "$work/$backend.tcpdump.err" "listening on" 20
	check "$backend: tcpdump -i netmap:$IF_A is listening" grep -q "listening on netmap:$IF_A" "$work/$backend.tcpdump.err" ||
		cat "$work/$backend.tcpdump.err"
	if [ "$backend" = xdp ]; then
		check "$backend: netmapd's XDP program is on $IF_A (AF_XDP)" eval "in_a ip link show dev $IF_A | grep -q 'prog/xdp.* name netmapd_xsk'"
	else
		check "$backend: no XDP program on $IF_A (AF_PACKET)" eval "! in_a ip link show dev $IF_A | grep -q 'prog/xdp'"
	fi
	in_b "$work/pkt_peer" send "$IF_B" "$count" "$sizes" -s 1 -R "$rate" >"$work/$backend.send1" 2>&1 &
	s1=$!
	in_b "$work/pkt_peer" send "$IF_B" "$noise" "$sizes" -s 2 -R $((rate / 2)) >"$work/$backend.send2" 2>&1 &
	s2=$!
	wait $s1; r1=$?
	wait $s2; r2=$?
	# -U writes each packet as it comes: stop tcpdump (SIGINT, as a user
	# does) once its file has stopped growing for a second (at most 30 s).
	last=-1 same=0
	for (( i = 0; i < 300 && same < 10; i++ )); do
		size=$(stat -c %s "$cap" 2>/dev/null || echo 0)
		if [ "$size" = "$last" ]; then same=$((same + 1)); else same=0; last=$size; fi
		sleep 0.1
	done
	kill -INT "$(cat "$stage/pid")" 2>/dev/null
	wait $tp; trc=$?
	cat "$work/$backend.send1" "$work/$backend.send2" "$work/$backend.tcpdump.err"
	captured=$(sed -n 's/^\([0-9]*\) packets\? captured$/\1/p' "$work/$backend.tcpdump.err")
	seen=$(sed -n 's/^\([0-9]*\) packets\? received by filter$/\1/p' "$work/$backend.tcpdump.err")
	check "$backend: pkt_peer sent $count frames of stream 1 and $noise of stream 2 from B" test $r1 = 0 -a $r2 = 0
	# At least: the interface's own IPv6 chatter may come through as well.
	check "$backend: tcpdump exits 0 at SIGINT: at least $((count + noise)) packets received by filter (${seen:-none}), $count captured (${captured:-none})" \
		test $trc = 0 -a "${captured:-0}" = "$count" -a "${seen:-0}" -ge $((count + noise))
	"$work/pcap_check" "$cap" "$count" "$sizes" 1 >"$work/$backend.check" 2>&1
	rc=$?
	cat "$work/$backend.check"
	check "$backend: the capture file holds exactly the $count stream-1 frames, byte-exact, none of stream 2 (BPF filter)" test $rc = 0

	in_b "$work/pkt_peer" recv "$IF_B" "$count" "$sizes" -s 3 -T 3 -W 20 >"$work/$backend.recv" 2>"$work/$backend.recv.err" &
	rp=$!
	wait_line "$work/$backend.recv.err" ready 10
	in_a_with_dev env LD_LIBRARY_PATH="$lib" "$work/pcap_send" "netmap:$IF_A" "$count" "$sizes" 3 >"$work/$backend.inject" 2>&1
	ic=$?
	wait $rp; rr=$?
	cat "$work/$backend.inject" "$work/$backend.recv"
	check "$backend: pcap_inject of $count frames on netmap:$IF_A: B receives every one byte-exact" test $ic = 0 -a $rr = 0

	net_stop_daemon "$pid"
	check "$backend: netmapd exits 0 on SIGTERM" test "$DAEMON_RC" = 0 || tail -20 "$log"
	umount -l "$DEV" 2>/dev/null
done
finish
