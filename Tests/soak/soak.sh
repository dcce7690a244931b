#!/usr/bin/env bash
# soak.sh: netmapd under hours-long-style load, compressed into SOAK_MINUTES
# (issue #8, item 5; `make soak`, not part of `make test`).
#
#   Tests/soak/soak.sh [NETMAPD]
#
# Environment:
#   SOAK_MINUTES  how long traffic runs (default 5; fractions are fine, e.g.
#                 0.5; 1 is a quick run)
#   NETMAPD       the daemon (default .build-soak/release/netmapd, which
#                 `make soak` builds with swift build -c release)
#   NETMAPCTL     its control tool (default: next to NETMAPD, else
#                 .build-soak/release/netmapctl)
#   SOAK_SEED     seed of the random choices (default: the shell's PID)
#   SOAK_XDP      0 to leave out the AF_XDP backend even where it could run
#
# Set-up (Tests/net/netns-lib.sh): two network namespaces A and B joined by
# two veth pairs, $IF_A <-> $IF_B ("packet" pair) and $XA <-> $XB ("xdp"
# pair), all addresses in 198.18.0.0/15; nothing is sent anywhere else.
# One netmapd per namespace (--backend auto --packet-interface $IF_A|$IF_B):
# the packet pair goes through the generic AF_PACKET backend, the xdp pair
# through the native AF_XDP backend. AF_XDP needs the daemons' region on
# tmpfs, so the run directory is on /dev/shm; without a tmpfs /dev/shm (or
# with SOAK_XDP=0) the xdp lanes are left out and the run says so.
#
# Lanes run side by side, each starting client after client until the time
# is up:
#   wire lanes   packet A->B, packet B->A, xdp A->B, xdp B->A: an nmd-recv
#                (registered first, sometimes with 64..2047 extra buffers
#                it swaps into every slot it gives back) and an nmd-send
#                with its own stream id, 1000..150000 frames of mixed sizes
#                (60, 1514, 60-1514, 60-300, 1000-1514), paced at 20k..150k
#                frames/s or (short bursts) not paced at all
#   pipe lanes   two, nmd-send on NAME{1 and nmd-recv on NAME}1 of one of
#                the daemons (alternating), sizes up to 2048, names reused
#   null lane    clients of Tests/soak/soak_null.c on null ports: 1..4 ring
#                pairs, 0 or 64..1023 extra buffers, 0.2..2 s each, two at
#                once
# About one pair in eight (one null client in six) gets a member killed with
# SIGKILL at a random moment; its partner runs on (bounded by timeouts).
#
# Accounting, for every wire pair where nobody was killed:
#
#     frames sent = distinct frames received intact + counted drops
#
#   frames sent      what nmd-send reports handed over and transmitted (it
#                    exits 0 only once every TX slot has been reclaimed)
#   received         distinct sequence numbers nmd-recv checked byte by byte
#                    (the -n count minus its reported "lost"); it must also
#                    report no bad and no duplicate frame
#   counted drops =  (1) the sending daemon's release-time report for the
#                        sender's TX ring ("N frames not sent": invalid,
#                        over the MTU, refused by the kernel), logged when the
#                        ring's last user leaves
#                  + (2) the receiving daemon's release-time report for the
#                        receiver's RX ring: AF_PACKET "K frames dropped by
#                        the kernel (ring full), D too long or short" (K is
#                        PACKET_STATISTICS tp_drops of the RX socket) -> K+D;
#                        AF_XDP "N frames dropped (not where they were put)"
#                        -> N (the same frames netmapctl's per-ring "drops"
#                        counter counts) and "frames dropped by the kernel:
#                        M (...), R more with the RX ring full"
#                        (XDP_STATISTICS) -> M+R
#                  + (3) the growth, over the pair's life, of
#                        /sys/class/net/SENDER_IF/statistics/tx_dropped and
#                        /sys/class/net/RECEIVER_IF/statistics/rx_dropped
#                        (read in the namespaces with ip netns exec: veth
#                        drops a frame its peer's backlog or XDP ring
#                        cannot take)
#                  except on the xdp pair, where a frame the receiver's
#                  AF_XDP socket cannot take fails the XDP redirect and veth
#                  counts it in RECEIVER_IF rx_dropped as well: there the
#                  receiving side contributes max(rx_dropped growth, (2)),
#                  not their sum (were they different frames, the max would
#                  under-count and fail the equation: it never hides a loss)
#   A lane has one pair at a time and each veth direction belongs to one
#   lane, so every one of these counters belongs to exactly one pair. The
#   script waits (netmapctl status) until the pair's rings have no user
#   before it reads (1) and (2).
# Pipe pairs must be lossless: sent = received = the count, both exit 0.
# Null clients must exit 0. Pairs with a SIGKILLed member (and null clients
# killed) are left out of the equation but count for what follows.
#
# At the end, with every client gone, each daemon must be alive, report no
# client and no port, and its pool (netmapctl status: free buffers, rings and
# interface objects) must be what it was before the first client; buffers
# the daemon reclaims when its last client goes ("last client gone:
# reclaimed") may only come from killed clients that held extra buffers.
# Memory: VmRSS, VmHWM and RssAnon of each netmapd (/proc/PID/status) every
# ~10 s. VmRSS counts the pages of the shared region the daemon touched
# (~350 MiB with the default pool); RssAnon is its own heap, where a leak
# shows. The last sample (taken once every client has gone) may exceed the
# first one at or after the warm-up (60 s, or a third of shorter runs) by
# at most max(4 MiB, 10%), for each of the three. Finally each daemon gets
# SIGTERM and must exit 0.
#
# Output: a progress line every ~30 s (elapsed, frames moved, clients
# started and killed, RSS), a summary table, "soak: PASS" or "soak: FAIL"
# with the reasons; exit status 0 only on PASS. Needs root. Everything it
# creates goes away on exit, however it exits (netns-lib's teardown).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
minutes=${SOAK_MINUTES:-5}
seed=${SOAK_SEED:-$$}
duration=$(awk -v m="$minutes" 'BEGIN { d = int(m * 60 + 0.5); if (d < 10) d = 10; print d }')
warmup=$(( duration >= 180 ? 60 : duration / 3 ))

[ "$(id -u)" = 0 ] || { echo "soak: needs root" >&2; exit 1; }
for t in jq gcc ip nsenter awk; do
	command -v $t >/dev/null || { echo "soak: needs $t" >&2; exit 1; }
done

NETMAPD=${1:-${NETMAPD:-$root/.build-soak/release/netmapd}}
[ -x "$NETMAPD" ] || { echo "soak: no netmapd at $NETMAPD (make soak builds one)" >&2; exit 1; }
NETMAPD=$(readlink -f "$NETMAPD")
if [ -z "${NETMAPCTL:-}" ]; then
	NETMAPCTL=$(dirname "$NETMAPD")/netmapctl
	[ -x "$NETMAPCTL" ] || NETMAPCTL=$root/.build-soak/release/netmapctl
fi
[ -x "$NETMAPCTL" ] || { echo "soak: no netmapctl at $NETMAPCTL" >&2; exit 1; }

. "$root/Tests/net/netns-lib.sh"

xdp=1
[ "${SOAK_XDP:-1}" = 0 ] && xdp=0
if [ $xdp = 1 ] && [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
	work=$(mktemp -d /dev/shm/netmapd-soak.XXXXXX)
else
	[ $xdp = 1 ] && echo "soak: /dev/shm is not tmpfs: AF_XDP lanes left out" >&2
	xdp=0
	work=$(mktemp -d /tmp/netmapd-soak.XXXXXX)
fi
net_add_cleanup "rm -rf $work"
net_add_cleanup "for m in $work/*/netmap; do umount -l \$m; done"
# Lanes and clients still running when the script is interrupted (by PID).
net_add_cleanup "for f in $work/lanes $work/pids/*; do [ -f \$f ] && kill -KILL \$(cat \$f); done"
mkdir -p "$work/pids" "$work/res" "$work/pairs"

cc() { gcc -O2 -Wall -Wextra -Werror -I "$root/Sources/ABI/CNetmapABI/include" -I "$root/tools" -o "$work/$1" "$2" || exit 1; }
cc nmd-send "$root/tools/nmd-send.c"
cc nmd-recv "$root/tools/nmd-recv.c"
cc soak_null "$here/soak_null.c"

# ---- network and daemons ----

net_setup
XA=${NET_TAG}xa
XB=${NET_TAG}xb
ip link add "$XA" netns "$NS_A" type veth peer name "$XB" netns "$NS_B"
in_a ip addr add "198.19.$(( $$ % 250 )).1/24" dev "$XA"
in_b ip addr add "198.19.$(( $$ % 250 )).2/24" dev "$XB"
in_a ip link set "$XA" up
in_b ip link set "$XB" up
for i in "$IF_A" "$XA"; do
	in_a ethtool -K "$i" tx off rx off >/dev/null 2>&1 || true
	in_a sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1" || true   # no ND/MLD chatter on the wires
done
for i in "$IF_B" "$XB"; do
	in_b ethtool -K "$i" tx off rx off >/dev/null 2>&1 || true
	in_b sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1" || true
done

DEV_A=$work/a/netmap
DEV_B=$work/b/netmap
CTL_A=$work/a/run/control
CTL_B=$work/b/run/control
if [ $xdp = 1 ]; then backend=auto; else backend=packet; fi
NET_BACKEND=$backend net_start_daemon "$NS_A" "$DEV_A" "$work/a.log" --packet-interface "$IF_A" || exit 1
PID_A=$NET_DAEMON_PID
NET_BACKEND=$backend net_start_daemon "$NS_B" "$DEV_B" "$work/b.log" --packet-interface "$IF_B" || exit 1
PID_B=$NET_DAEMON_PID

status() { "$NETMAPCTL" status --json --socket "$1" 2>/dev/null; }
pool_of() { status "$1" | jq -c '.engine.pool | {freeBuffers, totalBuffers, freeRings, totalRings, freeIfs, totalIfs}'; }
POOL0_A=$(pool_of "$CTL_A")
POOL0_B=$(pool_of "$CTL_B")
[ -n "$POOL0_A" ] && [ -n "$POOL0_B" ] || { echo "soak: netmapctl status does not answer" >&2; exit 1; }

deadline=$(( SECONDS + duration ))
lanes="packet A->B, packet B->A"
[ $xdp = 1 ] && lanes="$lanes, xdp A->B, xdp B->A"
echo "soak: $duration s of traffic (warm-up $warmup s), seed $seed; netmapd $NETMAPD"
echo "soak: $NS_A/{$IF_A,$XA} <-> $NS_B/{$IF_B,$XB}; daemons $PID_A (A) and $PID_B (B), --backend $backend, run dir $work"
echo "soak: lanes: $lanes, 2 pipe lanes, 1 null lane (2 clients at once)"

# ---- helpers ----

# Waits until FILE has a line matching PATTERN (SECS, default 10 s).
wait_line() {
	local i
	for i in $(seq $(( ${3:-10} * 10 ))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

rnd() { echo $(( (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1) + $1 )); }
pick() { local a=("$@"); echo "${a[RANDOM % ${#a[@]}]}"; }

sysstat() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3" 2>/dev/null || echo 0; }

# users of IF's non-host rings of direction DIR (tx|rx) in CTL's daemon
ring_users() {
	status "$1" | jq --arg n "$2" --arg d "$3" \
		'[.engine.ports[] | select(.name == $n) | .rings[] | select(.direction == $d and (.host | not)) | .users] | add // 0'
}

# Waits (15 s) until IF's DIR rings have no user left: the release of the
# pair's files reached the daemon and the ring's report is in its log.
wait_released() {
	local i u
	for i in $(seq 150); do
		u=$(ring_users "$1" "$2" "$3")
		[ "$u" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# Drops a daemon reported in LOG after byte OFFSET for ring lines "IF DIR..."
logged_drops() {
	tail -c +$(( $2 + 1 )) "$1" | grep -F "$3 $4" | awk '
		/frames not sent/ { for (i = 1; i <= NF; i++) if ($(i+1) == "frames" && $(i+2) == "not") s += $i }
		/dropped by the kernel \(ring full\)/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "frames" && $(i+2) == "dropped") s += $i; if ($(i+1) == "too") s += $i } }
		/dropped \(not where/ { for (i = 1; i <= NF; i++) if ($(i+1) == "frames" && $(i+2) == "dropped") s += $i }
		/frames dropped by the kernel:/ { for (i = 1; i <= NF; i++) { if ($i == "kernel:") s += $(i+1); if ($(i+1) == "more") s += $i } }
		END { print s + 0 }'
}

recv_field() { sed -n "s/.* $2 \([0-9]*\).*/\1/p" "$1" | head -1; }

# Starts a client in the background; its PID in $! and in $work/pids.
track() { echo "$1" >"$work/pids/$1"; }
untrack() { rm -f "$work/pids/$1"; }

# result LANE KIND OUTCOME SENT RECEIVED DROPS CLIENTS KILLED EXTRA_KILLED DETAIL
result() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$work/res/$1"; }

# A victim (sender or receiver) killed with SIGKILL after a random delay.
killer() { (sleep "$2"; kill -KILL "$1" 2>/dev/null) & }

# ---- wire lane: one pair at a time, one direction of one veth pair ----

wire_pair() {   # LANE ITER BACKEND DIR
	local lane=$1 it=$2 be=$3 dir=$4 sdev rdev sif rif sns rns slog rlog sctl rctl
	if [ "$be" = packet ]; then local ia=$IF_A ib=$IF_B; else local ia=$XA ib=$XB; fi
	if [ "$dir" = AB ]; then
		sdev=$DEV_A rdev=$DEV_B sif=$ia rif=$ib sns=$NS_A rns=$NS_B slog=$work/a.log rlog=$work/b.log sctl=$CTL_A rctl=$CTL_B
	else
		sdev=$DEV_B rdev=$DEV_A sif=$ib rif=$ia sns=$NS_B rns=$NS_A slog=$work/b.log rlog=$work/a.log sctl=$CTL_B rctl=$CTL_A
	fi
	local n sizes rate x="" kill="" stream=$(( lane * 1000000 + it + 1 )) out=$work/pairs/$lane.$it
	n=$(rnd 1000 150000)
	sizes=$(pick 60 1514 60-1514 60-1514 60-300 1000-1514)
	rate=$(pick 20000 50000 80000 120000 150000 0)
	[ "$rate" = 0 ] && n=$(rnd 1000 20000)
	[ $((RANDOM % 4)) = 0 ] && x="-x $(rnd 64 2047)"
	[ $((RANDOM % 8)) = 0 ] && kill=$(pick send recv)
	local s_tx0 r_rx0 s_off r_off
	s_tx0=$(sysstat "$sns" "$sif" tx_dropped)
	r_rx0=$(sysstat "$rns" "$rif" rx_dropped)
	s_off=$(stat -c %s "$slog")
	r_off=$(stat -c %s "$rlog")
	nsenter --net="/run/netns/$rns" "$work/nmd-recv" -d "$rdev" -i "$rif" -n "$n" -l "$sizes" -s "$stream" -T 3 -W 30 $x >"$out.recv" 2>"$out.rerr" &
	local rp=$!
	track $rp
	if ! wait_line "$out.rerr" ready; then
		kill -KILL $rp 2>/dev/null; wait $rp 2>/dev/null; untrack $rp
		result "$lane" "wire-$be" FAIL 0 0 0 1 0 0 "receiver on $rif did not start: $(head -c 300 "$out.rerr" | tr '\n\t' '  ')"
		return
	fi
	nsenter --net="/run/netns/$sns" "$work/nmd-send" -d "$sdev" -i "$sif" -n "$n" -l "$sizes" -R "$rate" -s "$stream" -t 120 -q >"$out.send" 2>"$out.serr" &
	local sp=$!
	track $sp
	case $kill in
		send) killer $sp "0.$(rnd 1 9)" ;;
		recv) killer $rp "0.$(rnd 1 9)" ;;
	esac
	wait $sp 2>/dev/null; local src=$?
	wait $rp 2>/dev/null; local rrc=$?
	untrack $sp; untrack $rp
	wait_released "$sctl" "$sif" tx || { result "$lane" "wire-$be" FAIL 0 0 0 2 0 0 "$sif TX rings still have users 15 s after the sender left"; return; }
	wait_released "$rctl" "$rif" rx || { result "$lane" "wire-$be" FAIL 0 0 0 2 0 0 "$rif RX rings still have users 15 s after the receiver left"; return; }
	local sent lost bad dup got
	sent=$(sed -n 's/^nmd-send: \([0-9]*\) frames.*/\1/p' "$out.send")
	lost=$(recv_field "$out.recv" lost)
	bad=$(recv_field "$out.recv" bad)
	dup=$(recv_field "$out.recv" duplicate)
	got=$(( n - ${lost:-$n} ))
	local xk=0
	if [ -n "$kill" ] && { [ $src = 137 ] || [ $rrc = 137 ]; }; then
		[ "$kill" = recv ] && [ -n "$x" ] && xk=1
		result "$lane" "wire-$be" KILLED "${sent:-0}" "$got" 0 2 1 $xk "$kill killed (sender rc $src, receiver rc $rrc)"
		return
	fi
	local d_tx d_rx d_log_s d_log_r drops
	d_tx=$(( $(sysstat "$sns" "$sif" tx_dropped) - s_tx0 ))
	d_rx=$(( $(sysstat "$rns" "$rif" rx_dropped) - r_rx0 ))
	d_log_s=$(logged_drops "$slog" "$s_off" "$sif" TX)
	d_log_r=$(logged_drops "$rlog" "$r_off" "$rif" RX)
	# AF_XDP: a frame the socket cannot take fails the XDP redirect, which
	# veth counts in rx_dropped too: the same frames, counted once.
	if [ "$be" = xdp ]; then
		drops=$(( d_tx + d_log_s + (d_rx > d_log_r ? d_rx : d_log_r) ))
	else
		drops=$(( d_tx + d_rx + d_log_s + d_log_r ))
	fi
	local why=""
	[ "$src" = 0 ] || why="$why sender exit $src ($(head -c 200 "$out.serr" | tr '\n\t' '  '));"
	case $rrc in 0) ;; 1) [ "${lost:-1}" -gt 0 ] || why="$why receiver exit 1 without loss;" ;; *) why="$why receiver exit $rrc;" ;; esac
	[ -n "$sent" ] || why="$why no sender report;"
	[ -n "$lost" ] || why="$why no receiver report;"
	[ "${bad:-1}" = 0 ] || why="$why $bad bad frames;"
	[ "${dup:-1}" = 0 ] || why="$why $dup duplicates;"
	[ "${sent:-0}" = "$n" ] || why="$why sent ${sent:-?} of $n;"
	[ $(( got + drops )) = "${sent:-0}" ] || why="$why sent ${sent:-?} != received $got + drops $drops;"
	local detail="$n x $sizes @ ${rate}pps${x:+, $x}: drops $sif tx_dropped $d_tx, $rif rx_dropped $d_rx, $sif TX report $d_log_s, $rif RX report $d_log_r"
	if [ -z "$why" ]; then
		result "$lane" "wire-$be" ok "$sent" "$got" "$drops" 2 0 0 "$detail"
	else
		result "$lane" "wire-$be" FAIL "${sent:-0}" "$got" "$drops" 2 0 0 "$why $detail"
		{ echo "--- $lane.$it"; cat "$out.send" "$out.serr" "$out.recv" "$out.rerr"; } >>"$work/failures"
	fi
}

wire_lane() {   # LANE BACKEND DIR
	RANDOM=$(( seed + $1 * 7919 ))
	local it=0
	while [ $SECONDS -lt $deadline ]; do
		wire_pair "$1" $it "$2" "$3"
		it=$((it + 1))
	done
}

# ---- pipe lane ----

pipe_pair() {   # LANE ITER
	local lane=$1 it=$2
	local dev name n sizes x="" kill="" out=$work/pairs/$lane.$it
	if [ $((it % 2)) = 0 ]; then dev=$DEV_A; else dev=$DEV_B; fi
	name="soak$lane.$((RANDOM % 3))"
	n=$(rnd 1000 300000)
	sizes=$(pick 60 2048 60-2048 60-1514 200-400)
	[ $((RANDOM % 4)) = 0 ] && x="-x $(rnd 64 1023)"
	[ $((RANDOM % 8)) = 0 ] && kill=$(pick send recv)
	"$work/nmd-recv" -d "$dev" -i "$name}1" -n "$n" -l "$sizes" -T 3 -W 30 $x >"$out.recv" 2>"$out.rerr" &
	local rp=$!
	track $rp
	if ! wait_line "$out.rerr" ready; then
		kill -KILL $rp 2>/dev/null; wait $rp 2>/dev/null; untrack $rp
		result "$lane" pipe FAIL 0 0 0 1 0 0 "receiver on $name}1 did not start: $(head -c 300 "$out.rerr" | tr '\n\t' '  ')"
		return
	fi
	"$work/nmd-send" -d "$dev" -i "$name{1" -n "$n" -l "$sizes" -t 60 -q >"$out.send" 2>"$out.serr" &
	local sp=$!
	track $sp
	case $kill in
		send) killer $sp "0.$(rnd 1 9)" ;;
		recv) killer $rp "0.$(rnd 1 9)" ;;
	esac
	wait $sp 2>/dev/null; local src=$?
	wait $rp 2>/dev/null; local rrc=$?
	untrack $sp; untrack $rp
	local sent lost bad dup got
	sent=$(sed -n 's/^nmd-send: \([0-9]*\) frames.*/\1/p' "$out.send")
	lost=$(recv_field "$out.recv" lost)
	bad=$(recv_field "$out.recv" bad)
	dup=$(recv_field "$out.recv" duplicate)
	got=$(( n - ${lost:-$n} ))
	if [ -n "$kill" ] && { [ $src = 137 ] || [ $rrc = 137 ]; }; then
		local xk=0
		[ "$kill" = recv ] && [ -n "$x" ] && xk=1
		result "$lane" pipe KILLED "${sent:-0}" "$got" 0 2 1 $xk "$kill killed (sender rc $src, receiver rc $rrc)"
		return
	fi
	local why=""
	[ "$src" = 0 ] || why="$why sender exit $src ($(head -c 200 "$out.serr" | tr '\n\t' '  '));"
	[ "$rrc" = 0 ] || why="$why receiver exit $rrc;"
	[ "${bad:-1}" = 0 ] || why="$why $bad bad frames;"
	[ "${dup:-1}" = 0 ] || why="$why $dup duplicates;"
	[ "${sent:-0}" = "$n" ] && [ "$got" = "$n" ] || why="$why sent ${sent:-?}, received $got of $n (a pipe loses nothing);"
	if [ -z "$why" ]; then
		result "$lane" pipe ok "$sent" "$got" 0 2 0 0 "$n x $sizes on $name${x:+, $x}"
	else
		result "$lane" pipe FAIL "${sent:-0}" "$got" 0 2 0 0 "$why $n x $sizes on $name${x:+, $x}"
		{ echo "--- $lane.$it"; cat "$out.send" "$out.serr" "$out.recv" "$out.rerr"; } >>"$work/failures"
	fi
}

pipe_lane() {   # LANE
	RANDOM=$(( seed + $1 * 7919 ))
	local it=0
	while [ $SECONDS -lt $deadline ]; do
		pipe_pair "$1" $it
		it=$((it + 1))
	done
}

# ---- null lane: two clients at a time ----

null_one() {   # LANE ITER
	local lane=$1 it=$2
	local dev x=0 kill=0 out=$work/pairs/$lane.$it
	if [ $((RANDOM % 2)) = 0 ]; then dev=$DEV_A; else dev=$DEV_B; fi
	[ $((RANDOM % 3)) = 0 ] && x=$(rnd 64 1023)
	[ $((RANDOM % 6)) = 0 ] && kill=1
	"$work/soak_null" -d "$dev" -n "soaknull$((RANDOM % 4))" -r "$(rnd 1 4)" -s "$(pick 0 64 256 1024)" \
		-x $x -t "$(rnd 2 20 | awk '{print $1 / 10}')" >"$out.out" 2>"$out.err" &
	local p=$!
	track $p
	[ $kill = 1 ] && killer $p "0.$(rnd 1 9)"
	wait $p 2>/dev/null; local rc=$?
	untrack $p
	if [ $kill = 1 ] && [ $rc = 137 ]; then
		result "$lane" null KILLED 0 0 0 1 1 $(( x > 0 )) "killed"
	elif [ $rc = 0 ]; then
		result "$lane" null ok 0 0 0 1 0 0 "$(cat "$out.out")"
	else
		result "$lane" null FAIL 0 0 0 1 0 0 "exit $rc: $(cat "$out.out" "$out.err" | tr '\n\t' '  ' | head -c 300)"
	fi
}

null_lane() {   # LANE
	RANDOM=$(( seed + $1 * 7919 ))
	local it=0
	while [ $SECONDS -lt $deadline ]; do
		null_one "$1" $it &
		null_one "$1" $((it + 1))
		wait
		it=$((it + 2))
	done
}

# ---- run ----

lane_pids=()
wire_lane 1 packet AB & lane_pids+=($!)
wire_lane 2 packet BA & lane_pids+=($!)
if [ $xdp = 1 ]; then
	wire_lane 3 xdp AB & lane_pids+=($!)
	wire_lane 4 xdp BA & lane_pids+=($!)
fi
pipe_lane 5 & lane_pids+=($!)
pipe_lane 6 & lane_pids+=($!)
null_lane 7 & lane_pids+=($!)
echo "${lane_pids[*]}" >"$work/lanes"

kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status" 2>/dev/null; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
all_results() { cat "$work"/res/* 2>/dev/null; }
moved() { all_results | awk -F'\t' '$3 != "FAIL" { s += $5 } END { print s + 0 }'; }
started() { all_results | awk -F'\t' '{ s += $7 } END { print s + 0 }'; }
killed() { all_results | awk -F'\t' '$3 == "KILLED" { s += $8 } END { print s + 0 }'; }

# memsample PID: "VmRSS VmHWM RssAnon" in KiB (empty if the daemon is gone)
memsample() {
	awk '$1 == "VmRSS:" { r = $2 } $1 == "VmHWM:" { h = $2 } $1 == "RssAnon:" { a = $2 }
		END { if (r != "") print r, h, a }' "/proc/$1/status" 2>/dev/null
}
t0=$SECONDS
next_sample=$t0
next_progress=$(( t0 + 30 ))
: >"$work/memory.A"
: >"$work/memory.B"
sample() {   # one line "T RSS HWM ANON" per daemon; 1 if one is gone
	local d pid m rc=0
	for d in A B; do
		eval "pid=\$PID_$d"
		m=$(memsample "$pid")
		if [ -z "$m" ]; then rc=1; continue; fi
		echo "$(( SECONDS - t0 )) $m" >>"$work/memory.$d"
	done
	return $rc
}
while [ $SECONDS -lt $deadline ]; do
	if [ $SECONDS -ge $next_sample ]; then
		next_sample=$(( next_sample + 10 ))
		sample || { echo "soak: a daemon died at $(( SECONDS - t0 )) s"; break; }
	fi
	if [ $SECONDS -ge $next_progress ]; then
		next_progress=$(( next_progress + 30 ))
		printf 'soak: %4d s: %d frames moved, %d clients started, %d killed, %d failed; RSS A %s MiB, B %s MiB\n' \
			$(( SECONDS - t0 )) "$(moved)" "$(started)" "$(killed)" \
			"$(all_results | awk -F'\t' '$3 == "FAIL"' | wc -l)" "$(mib "$(kib $PID_A VmRSS)")" "$(mib "$(kib $PID_B VmRSS)")"
	fi
	sleep 1
done
echo "soak: time is up after $(( SECONDS - t0 )) s; waiting for the last clients"
for p in "${lane_pids[@]}"; do wait "$p"; done
rm -f "$work/lanes"
# A last sample, every client gone.
sleep 1
sample

# ---- checks ----

failures=()
fail() { failures+=("$*"); }

all_results | awk -F'\t' '$3 == "FAIL" { print "soak: FAILED pair: lane " $1 " " $2 ": " $10 }'
nfail=$(all_results | awk -F'\t' '$3 == "FAIL"' | wc -l)
[ "$nfail" = 0 ] || fail "$nfail pairs/clients failed (above)"
[ -s "$work/failures" ] && { echo "soak: output of the failed pairs:"; head -c 6000 "$work/failures"; }

for d in A B; do
	eval "pid=\$PID_$d ctl=\$CTL_$d pool0=\$POOL0_$d"
	if ! kill -0 "$pid" 2>/dev/null; then fail "daemon $d is not running any more"; alive=0; continue; fi
	ok=0
	for i in $(seq 100); do
		s=$(status "$ctl")
		if [ -n "$s" ] && [ "$(jq '(.engine.clients | length) + (.engine.ports | length)' <<<"$s")" = 0 ] &&
			[ "$(jq -c '.engine.pool | {freeBuffers, totalBuffers, freeRings, totalRings, freeIfs, totalIfs}' <<<"$s")" = "$pool0" ]; then
			ok=1
			break
		fi
		sleep 0.1
	done
	eval "POOL1_$d=\$(jq -c '.engine.pool' <<<\"\$s\")"
	[ $ok = 1 ] || fail "daemon $d: pool/registry not back to the start: start $pool0, end $(jq -c '.engine | {pool, clients: (.clients | length), ports: [.ports[].name]}' <<<"$s")"
done

xkilled=$(all_results | awk -F'\t' '$3 == "KILLED" { s += $9 } END { print s + 0 }')
reclaims=$(grep -h 'last client gone: reclaimed' "$work/a.log" "$work/b.log" | wc -l)
reclaimed_bufs=$(grep -h 'last client gone: reclaimed' "$work/a.log" "$work/b.log" | awk '{ for (i = 1; i < NF; i++) if ($i == "reclaimed") s += $(i+1) } END { print s + 0 }')
if [ "$reclaims" -gt 0 ] && [ "$xkilled" = 0 ]; then
	fail "daemons reclaimed $reclaimed_bufs leaked buffers although no client holding extra buffers was killed"
fi

grep -q "$IF_A: AF_PACKET" "$work/a.log" || fail "$IF_A did not go through AF_PACKET"
if [ $xdp = 1 ]; then
	grep -q "$XA: AF_XDP (native backend)" "$work/a.log" || fail "$XA did not go through AF_XDP"
	grep -q "$XB: AF_XDP (native backend)" "$work/b.log" || fail "$XB did not go through AF_XDP"
fi

# Memory: the first sample after the warm-up against the last one, for
# VmRSS (which includes the pages of the shared region the daemon touched),
# VmHWM and RssAnon (the daemon's own heap: where a leak would show).
declare -A mem
for d in A B; do
	base=$(awk -v w=$warmup '$1 >= w { print; exit }' "$work/memory.$d")
	endl=$(tail -1 "$work/memory.$d")
	first=$(head -1 "$work/memory.$d")
	if [ -z "$base" ] || [ "$base" = "$endl" ]; then
		fail "daemon $d: no memory sample after the warm-up and before the end"
		base=$endl
	fi
	read -r _ "mem[$d.rss0]" _ _ <<<"$first"
	read -r "mem[$d.tb]" "mem[$d.rssb]" "mem[$d.hwmb]" "mem[$d.anonb]" <<<"$base"
	read -r "mem[$d.te]" "mem[$d.rsse]" "mem[$d.hwme]" "mem[$d.anone]" <<<"$endl"
	for k in rss:VmRSS hwm:VmHWM anon:RssAnon; do
		b=${mem[$d.${k%%:*}b]:-0} e=${mem[$d.${k%%:*}e]:-0}
		limit=$(( b + (b / 10 > 4096 ? b / 10 : 4096) ))
		[ "$e" -le "$limit" ] || fail "daemon $d: ${k#*:} grew from $(mib "$b") MiB (at ${mem[$d.tb]} s) to $(mib "$e") MiB (at ${mem[$d.te]} s); allowed +max(4 MiB, 10%)"
	done
done

# Clean exit on SIGTERM.
for d in A B; do
	eval "pid=\$PID_$d"
	kill -0 "$pid" 2>/dev/null || continue
	kill -TERM "$pid"
	rc=""
	for i in $(seq 100); do
		if ! kill -0 "$pid" 2>/dev/null; then wait "$pid"; rc=$?; break; fi
		sleep 0.1
	done
	if [ -z "$rc" ]; then
		fail "daemon $d did not exit within 10 s of SIGTERM"
		kill -KILL "$pid" 2>/dev/null
	elif [ "$rc" != 0 ]; then
		fail "daemon $d exited $rc on SIGTERM"
	fi
	eval "EXIT_$d=\${rc:-timeout}"
done

# ---- summary ----

echo
echo "soak summary ($(( SECONDS - t0 )) s, seed $seed)"
printf '  %-12s %7s %7s %7s %12s %12s %10s\n' kind ok killed failed sent received drops
all_results | awk -F'\t' '
	{ k[$2] = 1; if ($3 == "ok") ok[$2]++; else if ($3 == "KILLED") kl[$2]++; else fl[$2]++
	  if ($3 == "ok") { se[$2] += $4; re[$2] += $5; dr[$2] += $6 } }
	END { for (x in k) printf "  %-12s %7d %7d %7d %12d %12d %10d\n", x, ok[x], kl[x], fl[x], se[x], re[x], dr[x] }' | sort
echo "  (sent/received/drops: pairs with no member killed; null clients move nothing)"
echo "  clients started $(started), killed with SIGKILL $(killed) ($xkilled holding extra buffers); reclaimed at last-client-gone: $reclaims times, $reclaimed_bufs buffers"
printf '  %-10s %10s %10s %10s %15s %15s %6s\n' daemon "RSS start" "RSS warm" "RSS end" "HWM warm/end" "anon warm/end" exit
for d in A B; do
	eval "pid=\$PID_$d ex=\${EXIT_$d:-?}"
	printf '  %-10s %6s MiB %6s MiB %6s MiB %15s %15s %6s\n' "$d ($pid)" "$(mib "${mem[$d.rss0]:-0}")" \
		"$(mib "${mem[$d.rssb]:-0}")" "$(mib "${mem[$d.rsse]:-0}")" \
		"$(mib "${mem[$d.hwmb]:-0}")/$(mib "${mem[$d.hwme]:-0}")" "$(mib "${mem[$d.anonb]:-0}")/$(mib "${mem[$d.anone]:-0}")" "$ex"
done
echo "  (MiB; warm = first sample at or after $warmup s, end = after the last client left)"
echo "  pool A start $POOL0_A"
echo "  pool A end   ${POOL1_A:-?}"
echo "  pool B start $POOL0_B"
echo "  pool B end   ${POOL1_B:-?}"
if [ ${#failures[@]} = 0 ]; then
	echo "soak: PASS"
	exit 0
fi
for f in "${failures[@]}"; do echo "soak: FAIL: $f"; done
echo "soak: FAIL"
exit 1
