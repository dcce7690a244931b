#!/usr/bin/env bash
# bench/run.sh: `make bench`. netmapd against the raw kernel interfaces it
# sits on, in the same invocation, in alternating runs. Needs root.
#
#   bench/run.sh [NETMAPD]        (make bench builds a release netmapd first)
#
# Environment: BENCH_SECS seconds per run (2), BENCH_ROUNDS rounds (3),
# BENCH_SIZES frame sizes (60 1514), BENCH_BATCHES (1 8 64 256 512 ring),
# BENCH_GROUPS which groups (xdp-tx xdp-rx pkt-tx pkt-rx pipe pipe-mon vale sync xdp-rxpath host-pkt host-xdp),
# BENCH_VALE_BATCHES batches of the vale group (64 512),
# BENCH_OUT results folder (bench-results/<date>; bench-results/latest
# points at the newest).
#
# Set-up (printed with the results): two fresh network namespaces with a
# veth pair A <-> B, GRO on and threaded NAPI on both ends (the receiving
# side's kernel work runs in its own kernel thread, not inside the sender's
# system call), checksum offloads off, no CPU pinning (2 cores: the
# scheduler places programs, daemon and NAPI threads) except in the sync
# group, the same for every run. Senders work on A; B runs an XDP_DROP program (bench/xdp_drop.c), the
# cheapest possible receiver. Receivers work on A; the source is
# bench/xdp_gen.c in B: the kernel's BPF_PROG_RUN "live frames" mode
# redirecting one frame into B as fast as it can (one core).
#
# Groups (each round runs every group; inside a group the raw baseline runs
# first and last, the netmapd batches in between, ascending in odd rounds and
# descending in even ones, so drift hits both sides):
#   xdp-tx  raw AF_XDP TX (bench/raw_bench.c)  vs  nm_bench tx through
#           netmapd --backend xdp
#   xdp-rx  raw AF_XDP RX                      vs  nm_bench rx, --backend xdp
#   pkt-tx  raw AF_PACKET TPACKET_V2 TX ring   vs  nm_bench tx, --backend packet
#   pkt-rx  raw AF_PACKET TPACKET_V3 RX ring   vs  nm_bench rx, --backend packet
#   pipe    nm_bench tx -> nm_bench rx over a netmap pipe through the device
#           (60-byte frames; no raw counterpart: compared with the target)
#   pipe-mon the same pipe at batch 512 with a /r copy monitor of the
#           receiving end vs without (the baseline, first and last)
#   vale    nm_bench tx -> nm_bench rx between two ports of a VALE switch
#           (every BENCH_SIZES size, batches 64 and 512) vs a pipe between
#           two processes at batch 512, same size, same round
#   sync    empty NIOCTXSYNC round trip through netmapd (nm_bench sync on a
#           pipe end) vs a no-op ioctl answered by bench/fuse_floor.c, a
#           minimal single-threaded FUSE server on the same kind of file
#   xdp-rxpath  AF_XDP receive with the slots' buffers kept stable (the
#           default: frames copied into the buffers the slots hold, as
#           netmap's RX slots only change buffers when the program swaps)
#           vs --xdp-rx-swap (frames land in pool buffers that are swapped
#           into the slots, NS_BUF_CHANGED) as the baseline, first and last;
#           nm_bench rx at batch 512, the source a TPACKET TX ring on B
#           (raw_bench pkt-tx) (issue #14 item 13)
#   host-pkt, host-xdp  the host path (issue #13): 64 UDP datagrams
#           (60-byte frames) in flight from B to an echo on A's stack and
#           back (bench/host_echo.c), plainly (raw, first and last) vs
#           through Tests/net/host_bridge.c on A (NIC rings <-> host rings
#           with buffer swaps) on each backend; the rate counts requests and
#           answers (B's XDP_DROP is off meanwhile)
# Per run: frames and bytes moved, wall time, the client's CPU time, the
# daemon's CPU time (/proc/PID/stat) and peak RSS (VmHWM, reset before each
# run through /proc/PID/clear_refs). TX rates count what the program had
# completed (the drain of its rings included); B's rx_packets is recorded
# alongside as a cross-check. The raw data go to runs.jsonl; bench/report.py
# prints the table and writes bench.json, bench.md and bench.png.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
NETMAPD=$(readlink -f "${1:-${NETMAPD:-$root/.build/release/netmapd}}")
export NETMAPD
secs=${BENCH_SECS:-2}
rounds=${BENCH_ROUNDS:-3}
sizes=${BENCH_SIZES:-60 1514}
batches=${BENCH_BATCHES:-1 8 64 256 512 ring}
groups=${BENCH_GROUPS:-xdp-tx xdp-rx pkt-tx pkt-rx pipe pipe-mon vale sync xdp-rxpath host-pkt host-xdp}
vale_batches=${BENCH_VALE_BATCHES:-64 512}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=${BENCH_OUT:-$root/bench-results/$stamp}
mkdir -p "$out" "$root/bench-results"
out=$(readlink -f "$out")
runs=$out/runs.jsonl
: >"$runs"
[ -x "$NETMAPD" ] || { echo "bench: no netmapd at $NETMAPD (make bench builds one)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (namespaces, XDP, FUSE)" >&2; exit 1; }

log() { echo "bench: $*" >&2; }

# AF_XDP pins the region: the work folder (region files, devices) is on tmpfs.
work=$(mktemp -d /dev/shm/netmapd-bench.XXXXXX)
. "$root/Tests/net/netns-lib.sh"
net_add_cleanup "rm -rf $work"
net_add_cleanup "for m in $work/*/netmap $work/floor; do umount -l \$m; done"

log "building the benchmark programs in $work"
CFLAGS="-O2 -g -Wall -Wextra -Werror -I $root/Sources/ABI/CNetmapABI/include -I $root/tools -I $root/Sources/Ports/CXDPSys/include"
# shellcheck disable=SC2086
{
	gcc $CFLAGS -o "$work/nm_bench" "$here/nm_bench.c"
	gcc $CFLAGS -o "$work/raw_bench" "$here/raw_bench.c" "$root/Sources/Ports/CXDPSys/nmd_xdp.c" -lxdp -lbpf
	gcc $CFLAGS -o "$work/xdp_gen" "$here/xdp_gen.c" -lbpf
	gcc $CFLAGS -o "$work/xdp_drop" "$here/xdp_drop.c" -lbpf
	gcc $CFLAGS -o "$work/fuse_floor" "$here/fuse_floor.c"
	gcc $CFLAGS -o "$work/host_bridge" "$root/Tests/net/host_bridge.c"
	gcc $CFLAGS -o "$work/host_echo" "$here/host_echo.c"
}

net_setup
for ns_if in "$NS_A:$IF_A" "$NS_B:$IF_B"; do
	ns=${ns_if%%:*} ifc=${ns_if#*:}
	ip netns exec "$ns" ethtool -K "$ifc" gro on >/dev/null 2>&1 || true
	ip netns exec "$ns" sh -c "echo 1 > /sys/class/net/$ifc/threaded" \
		|| { log "cannot switch $ifc to threaded NAPI"; exit 1; }
done
in_b "$work/xdp_drop" attach "$IF_B" >/dev/null
net_add_cleanup "in_b $work/xdp_drop detach $IF_B"
peer_rx() { ip netns exec "$NS_B" cat "/sys/class/net/$IF_B/statistics/rx_packets"; }

setup="veth pair in two namespaces; GRO on, threaded NAPI on both ends; checksum offloads off; no CPU pinning except the sync group (client and server on CPU 0); TX peer: XDP_DROP on B; RX source: BPF_PROG_RUN live frames redirected into B; $(nproc) CPUs; kernel $(uname -r)"
log "set-up: $setup"

# Two daemons on A: the native (AF_XDP) and the generic (AF_PACKET) backend.
NET_BACKEND=xdp net_start_daemon "$NS_A" "$work/xdp/netmap" "$work/xdp.log"
PID_XDP=$NET_DAEMON_PID
NET_BACKEND=packet net_start_daemon "$NS_A" "$work/pkt/netmap" "$work/pkt.log"
PID_PKT=$NET_DAEMON_PID
# A third for xdp-rxpath: the native backend swapping RX buffers into slots.
if grep -qw xdp-rxpath <<<"$groups"; then
	NET_BACKEND=xdp net_start_daemon "$NS_A" "$work/xdpc/netmap" "$work/xdpc.log" --xdp-rx-swap
	PID_XDPC=$NET_DAEMON_PID
fi
grep -q "backend xdp\|AF_XDP\|native" "$work/xdp.log" || true

dcpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }
hwm_reset() { echo 5 >"/proc/$1/clear_refs"; }
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# record ROUND GROUP KIND BACKEND DIR SIZE BATCH LINE DPID DCPU0 [PEER0]
record() {
	local line=$8 dpid=$9 dc0=${10} peer0=${11:-} dcpu_used=0 hw=0 peer=null
	if [ "$dpid" != 0 ]; then
		dcpu_used=$(awk -v a="$dc0" -v b="$(dcpu "$dpid")" 'BEGIN { printf "%.2f", b - a }')
		hw=$(hwm "$dpid")
	fi
	[ -n "$peer0" ] && peer=$(( $(peer_rx) - peer0 ))
	local frames bytes seconds ccpu syncs
	frames=$(field frames "$line"); bytes=$(field bytes "$line"); seconds=$(field seconds "$line")
	ccpu=$(field cpu "$line"); syncs=$(field syncs "$line")
	if [ -z "$frames" ] || [ -z "$seconds" ]; then
		log "run $2/$3/$6/$7 gave no result: ${line:-nothing}"
		return 0
	fi
	printf '{"round":%s,"group":"%s","kind":"%s","backend":"%s","dir":"%s","size":%s,"batch":"%s","frames":%s,"bytes":%s,"seconds":%s,"cpu_client":%s,"cpu_daemon":%s,"daemon_hwm_kib":%s,"syncs":%s,"peer_rx":%s}\n' \
		"$1" "$2" "$3" "$4" "$5" "$6" "$7" "$frames" "${bytes:-0}" "$seconds" "${ccpu:-0}" "$dcpu_used" "$hw" "${syncs:-0}" "$peer" >>"$runs"
}

# A ring's slot count, for the "ring" batch: what the daemon reports.
ring_batch() { echo 100000; }

tx_raw() { # ROUND GROUP MODE SIZE
	local p0 line
	p0=$(peer_rx)
	line=$(in_a "$work/raw_bench" "$3" "$IF_A" "$secs" "$4" 2>"$work/err") || log "raw $3: $(cat "$work/err")"
	record "$1" "$2" raw "${3%%-*}" tx "$4" - "$line" 0 0 "$p0"
}

tx_nm() { # ROUND GROUP DAEMONPID DEV SIZE BATCH
	local p0 c0 line b=$6
	[ "$b" = ring ] && b=$(ring_batch)
	hwm_reset "$3"; p0=$(peer_rx); c0=$(dcpu "$3")
	line=$(nsenter --net="/run/netns/$NS_A" "$work/nm_bench" tx -d "$4" -i "$IF_A" -t "$secs" -l "$5" -b "$b" 2>"$work/err") \
		|| log "nm_bench tx ($2, batch $6): $(cat "$work/err")"
	record "$1" "$2" netmapd "${2%%-*}" tx "$5" "$6" "$line" "$3" "$c0" "$p0"
}

# Receivers: start the receiver, wait until it is ready, start the source.
rx_raw() { # ROUND GROUP MODE SIZE
	in_a "$work/raw_bench" "$3" "$IF_A" "$secs" >"$work/rx.out" 2>"$work/rx.err" &
	local rp=$! i
	for i in $(seq 100); do grep -q ready "$work/rx.err" && break; sleep 0.05; done
	in_b "$work/xdp_gen" "$IF_B" "$(awk -v s="$secs" 'BEGIN { print s + 1.5 }')" "$4" >/dev/null 2>"$work/gen.err" \
		|| log "xdp_gen: $(cat "$work/gen.err")"
	wait $rp || log "raw $3: $(cat "$work/rx.err")"
	record "$1" "$2" raw "${3%%-*}" rx "$4" - "$(cat "$work/rx.out")" 0 0
}

rx_nm() { # ROUND GROUP DAEMONPID DEV SIZE BATCH
	local b=$6 c0 i
	[ "$b" = ring ] && b=$(ring_batch)
	hwm_reset "$3"; c0=$(dcpu "$3")
	nsenter --net="/run/netns/$NS_A" "$work/nm_bench" rx -d "$4" -i "$IF_A" -t "$secs" -b "$b" >"$work/rx.out" 2>"$work/rx.err" &
	local rp=$!
	for i in $(seq 100); do grep -q ready "$work/rx.err" && break; sleep 0.05; done
	in_b "$work/xdp_gen" "$IF_B" "$(awk -v s="$secs" 'BEGIN { print s + 1.5 }')" "$5" >/dev/null 2>"$work/gen.err" \
		|| log "xdp_gen: $(cat "$work/gen.err")"
	wait $rp || log "nm_bench rx ($2, batch $6): $(cat "$work/rx.err")"
	record "$1" "$2" netmapd "${2%%-*}" rx "$5" "$6" "$(cat "$work/rx.out")" "$3" "$c0"
}

pipe_nm() { # ROUND BATCH [GROUP KIND MONITOR]
	local b=$2 c0 i g=${3:-pipe} kind=${4:-netmapd} mon=${5:-} mp=
	[ "$b" = ring ] && b=$(ring_batch)
	hwm_reset "$PID_PKT"; c0=$(dcpu "$PID_PKT")
	"$work/nm_bench" rx -d "$work/pkt/netmap" -i "bench{$1" -t "$secs" -b "$b" >"$work/rx.out" 2>"$work/rx.err" &
	local rp=$!
	for i in $(seq 100); do grep -q ready "$work/rx.err" && break; sleep 0.05; done
	if [ -n "$mon" ]; then   # a monitor of the receiving end, before the sender starts
		"$work/nm_bench" rx -d "$work/pkt/netmap" -i "bench{$1" -M "$mon" -t "$secs" -b "$b" >"$work/mon.out" 2>"$work/mon.err" &
		mp=$!
		for i in $(seq 100); do grep -q ready "$work/mon.err" && break; sleep 0.05; done
	fi
	local line
	line=$("$work/nm_bench" tx -d "$work/pkt/netmap" -i "bench}$1" -t "$secs" -l 60 -b "$b" 2>"$work/err") \
		|| log "nm_bench pipe tx (batch $2): $(cat "$work/err")"
	wait $rp || log "nm_bench pipe rx (batch $2): $(cat "$work/rx.err")"
	if [ -n "$mp" ]; then
		wait $mp || log "nm_bench /$mon monitor (batch $2): $(cat "$work/mon.err")"
		log "pipe, batch $2: the /$mon monitor saw $(field frames "$(cat "$work/mon.out")") frames, the receiver $(field frames "$(cat "$work/rx.out")") (counted windows)"
	fi
	local rx
	rx=$(cat "$work/rx.out")
	# The sender's count and time (its drain needs the receiver); the
	# receiver's CPU time is added to the client's.
	local rcpu
	rcpu=$(field cpu "$rx")
	line=$(awk -v l="$line" -v r="${rcpu:-0}" 'BEGIN { n = split(l, a, " "); for (i = 1; i <= n; i++) { if (a[i] ~ /^cpu=/) { split(a[i], c, "="); a[i] = sprintf("cpu=%.4f", c[2] + r) } printf "%s%s", a[i], (i < n ? " " : "\n") } }')
	record "$1" "$g" "$kind" pipe pipe 60 "$2" "$line" "$PID_PKT" "$c0"
}

# The vale group: nm_bench tx on one port of a VALE switch, nm_bench rx on
# another (two processes, frames copied by the switch, lossy by design: the
# receiver's count is the rate). Its baseline ("raw" in runs.jsonl) is a
# pipe between two processes at batch 512 with the same frame size, in the
# same round.
vale_pair() { # ROUND GROUPKIND RXPORT TXPORT SIZE BATCH BATCHLABEL
	local c0 i
	hwm_reset "$PID_PKT"; c0=$(dcpu "$PID_PKT")
	"$work/nm_bench" rx -d "$work/pkt/netmap" -i "$3" -t "$secs" -b "$6" >"$work/rx.out" 2>"$work/rx.err" &
	local rp=$!
	for i in $(seq 100); do grep -q ready "$work/rx.err" && break; sleep 0.05; done
	local line rx
	line=$("$work/nm_bench" tx -d "$work/pkt/netmap" -i "$4" -t "$secs" -l "$5" -b "$6" 2>"$work/err") \
		|| log "nm_bench $2 tx (size $5, batch $6): $(cat "$work/err")"
	wait $rp || log "nm_bench $2 rx (size $5, batch $6): $(cat "$work/rx.err")"
	rx=$(cat "$work/rx.out")
	# The receiver's count and time; the sender's CPU time is added to the client's.
	local tcpu
	tcpu=$(field cpu "$line")
	rx=$(awk -v l="$rx" -v r="${tcpu:-0}" 'BEGIN { n = split(l, a, " "); for (i = 1; i <= n; i++) { if (a[i] ~ /^cpu=/) { split(a[i], c, "="); a[i] = sprintf("cpu=%.4f", c[2] + r) } printf "%s%s", a[i], (i < n ? " " : "\n") } }')
	if [ "$2" = raw ]; then
		record "$1" vale raw pipe pipe "$5" - "$rx" 0 0
	else
		record "$1" vale netmapd vale vale "$5" "$7" "$rx" "$PID_PKT" "$c0"
	fi
}
vale_base() { vale_pair "$1" raw "vbpipe{$1" "vbpipe}$1" "$2" 512 -; }
vale_nm() { vale_pair "$1" netmapd "valeb$1:rx" "valeb$1:tx" "$2" "$3" "$3"; }

# The sync group pins client and server (every daemon thread) to CPU 0: a
# wake-up across CPUs costs 60-140 us on these machines and would hide the
# round trip being measured.
sync_runs() { # ROUND
	local line all
	all=0-$(( $(nproc) - 1 ))
	taskset -a -p -c 0 "$PID_PKT" >/dev/null
	line=$(taskset -c 0 "$work/fuse_floor" client "$work/floor" "$secs" 2>"$work/err") || log "fuse_floor client: $(cat "$work/err")"
	record "$1" sync floor fuse sync 0 - "$(sed 's/calls=/syncs=/; s/us_per_call=[0-9.]*//; s/$/ frames=0 bytes=0 cpu=0/' <<<"$line")" 0 0
	local c0
	hwm_reset "$PID_PKT"; c0=$(dcpu "$PID_PKT")
	line=$(taskset -c 0 "$work/nm_bench" sync -d "$work/pkt/netmap" -i "sync{$1" -t "$secs" 2>"$work/err") || log "nm_bench sync: $(cat "$work/err")"
	record "$1" sync netmapd pipe sync 0 - "$line" "$PID_PKT" "$c0"
	taskset -a -p -c "$all" "$PID_PKT" >/dev/null
}

# rxpath_run ROUND KIND DAEMONPID DEV: nm_bench rx at batch 512 through
# daemon DAEMONPID while B sends through a TPACKET TX ring.
rxpath_run() {
	local c0 i
	hwm_reset "$3"; c0=$(dcpu "$3")
	nsenter --net="/run/netns/$NS_A" "$work/nm_bench" rx -d "$4" -i "$IF_A" -t "$secs" -b 512 >"$work/rx.out" 2>"$work/rx.err" &
	local rp=$!
	for i in $(seq 100); do grep -q ready "$work/rx.err" && break; sleep 0.05; done
	in_b "$work/raw_bench" pkt-tx "$IF_B" "$(awk -v s="$secs" 'BEGIN { print s + 1.5 }')" 60 >/dev/null 2>"$work/gen.err" \
		|| log "raw_bench pkt-tx on B: $(cat "$work/gen.err")"
	wait $rp || log "nm_bench rx (xdp-rxpath, $2): $(cat "$work/rx.err")"
	record "$1" xdp-rxpath "$2" xdp rx 60 512 "$(cat "$work/rx.out")" "$3" "$c0"
}

# host_load ROUND GROUP KIND DAEMONPID DEV: one run of bench/host_echo.c
# (64 UDP datagrams of 60-byte frames in flight from B to an echo on A's
# stack and back), plain (raw) or through the host bridge on DAEMONPID.
host_load() {
	local bp="" c0=0 i line
	if [ "$3" = netmapd ]; then
		hwm_reset "$4"; c0=$(dcpu "$4")
		nsenter --net="/run/netns/$NS_A" "$work/host_bridge" -d "$5" -i "$IF_A" >/dev/null 2>"$work/hb.err" &
		bp=$!
		for i in $(seq 100); do grep -q ready "$work/hb.err" && break; sleep 0.05; done
		in_b ping -c 1 -W 1 "$ADDR_A" >/dev/null 2>&1 || true   # the path works before the clock starts
	fi
	line=$(in_b "$work/host_echo" load "$ADDR_A" 5202 "$secs" 64 2>"$work/err") || log "host_echo ($2, $3): $(cat "$work/err")"
	if [ -n "$bp" ]; then
		kill "$bp"; wait "$bp" || log "host_bridge: $(cat "$work/hb.err")"
		# The plain path is back before the next run.
		for i in $(seq 20); do in_b ping -c 1 -W 0.2 "$ADDR_A" >/dev/null 2>&1 && break; done
	fi
	record "$1" "$2" "$3" "${2#*-}" host 60 - "$line" "$4" "$c0"
}

host_runs() { # ROUND GROUP DAEMONPID DEV
	in_b "$work/xdp_drop" detach "$IF_B" >/dev/null
	host_load "$1" "$2" raw 0 ""
	host_load "$1" "$2" netmapd "$3" "$4"
	host_load "$1" "$2" raw 0 ""
	in_b "$work/xdp_drop" attach "$IF_B" >/dev/null
}

in_a "$work/host_echo" serve "$ADDR_A" 5202 >/dev/null 2>"$work/echo.err" &
ECHO_PID=$!
net_add_cleanup "kill $ECHO_PID"

taskset -c 0 "$work/fuse_floor" serve "$work/floor" >"$work/floor.out" 2>"$work/floor.err" &
FLOOR_PID=$!
net_add_cleanup "kill $FLOOR_PID; wait $FLOOR_PID"
for i in $(seq 100); do grep -q ready "$work/floor.out" && break; sleep 0.05; done

order() { # ROUND LIST...: the list, reversed in even rounds
	local r=$1
	shift
	if (( r % 2 )); then echo "$@"; else echo "$@" | tr ' ' '\n' | tac | tr '\n' ' '; fi
}

total=$(( rounds * ( $(wc -w <<<"$groups") ) ))
done_groups=0
start=$(date +%s)
for r in $(seq "$rounds"); do
	for g in $groups; do
		done_groups=$((done_groups + 1))
		log "round $r/$rounds: $g ($done_groups of $total groups, $(( $(date +%s) - start )) s so far)"
		case $g in
		xdp-tx|pkt-tx|xdp-rx|pkt-rx)
			dir=${g#*-}
			if [ "${g%%-*}" = xdp ]; then pid=$PID_XDP dev=$work/xdp/netmap; else pid=$PID_PKT dev=$work/pkt/netmap; fi
			for s in $sizes; do
				"${dir}_raw" "$r" "$g" "$g" "$s"
				for b in $(order "$r" $batches); do "${dir}_nm" "$r" "$g" "$pid" "$dev" "$s" "$b"; done
				"${dir}_raw" "$r" "$g" "$g" "$s"
			done ;;
		pipe)
			for b in $(order "$r" $batches); do pipe_nm "$r" "$b"; done ;;
		pipe-mon)
			# The same pipe at batch 512 without (first and last: the
			# baseline) and with a /r copy monitor of the receiving end.
			pipe_nm "$r" 512 pipe-mon raw
			pipe_nm "$r" 512 pipe-mon netmapd r
			pipe_nm "$r" 512 pipe-mon raw ;;
		vale)
			for sz in $sizes; do
				vale_base "$r" "$sz"
				for b in $(order "$r" $vale_batches); do vale_nm "$r" "$sz" "$b"; done
				vale_base "$r" "$sz"
			done ;;
		sync)
			sync_runs "$r" ;;
		xdp-rxpath)
			rxpath_run "$r" raw "$PID_XDPC" "$work/xdpc/netmap"
			rxpath_run "$r" netmapd "$PID_XDP" "$work/xdp/netmap"
			rxpath_run "$r" raw "$PID_XDPC" "$work/xdpc/netmap" ;;
		host-pkt)
			host_runs "$r" "$g" "$PID_PKT" "$work/pkt/netmap" ;;
		host-xdp)
			host_runs "$r" "$g" "$PID_XDP" "$work/xdp/netmap" ;;
		*) log "unknown group $g" ;;
		esac
	done
done
log "all runs done in $(( $(date +%s) - start )) s; daemons' logs: $work/*.log (removed at exit)"
grep -h -E "warning|error" "$work/xdp.log" "$work/pkt.log" | head -5 >&2 || true

# Debian's python3 (its python3-matplotlib draws the chart), whatever else
# comes first in PATH.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
"$py" "$here/report.py" "$runs" "$out" --setup "$setup" --netmapd "$NETMAPD"
if [ -z "${BENCH_OUT:-}" ]; then
	ln -sfn "$out" "$root/bench-results/latest"
	log "results: $out (bench.md, bench.json, bench.png, runs.jsonl); also bench-results/latest"
else
	log "results: $out (bench.md, bench.json, bench.png, runs.jsonl)"
fi
