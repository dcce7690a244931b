# netns-lib.sh: the network fixture of the net tests, the benchmark and the
# demo. Source it, then call net_setup; net_teardown runs from the EXIT trap it
# installs, so namespaces, veth pairs and daemons go away even when a test
# fails or is interrupted.
#
#   net_setup            two namespaces $NS_A and $NS_B with a veth pair
#                        $IF_A (in A, $ADDR_A) <-> $IF_B (in B, $ADDR_B)
#   net_add_cleanup CMD  run CMD (eval'd) at teardown, newest first
#   in_a CMD / in_b CMD  run CMD inside namespace A / B (network only: no
#                        private mount namespace, so FUSE devices stay visible)
#
# Names carry the shell's PID so parallel runs do not collide. Addresses are
# from 198.18.0.0/15 (RFC 2544 benchmarking range) and exist only inside the
# two namespaces; nothing here routes anywhere else.

. "$(dirname "${BASH_SOURCE[0]}")/../lib/daemon.sh"

NET_TAG=${NET_TAG:-nm$$}
NS_A="${NET_TAG}a"
NS_B="${NET_TAG}b"
IF_A="${NET_TAG}va"
IF_B="${NET_TAG}vb"
ADDR_A=198.18.$(( $$ % 250 )).1
ADDR_B=198.18.$(( $$ % 250 )).2
_net_cleanups=()

net_add_cleanup() { _net_cleanups+=("$1"); }

net_teardown() {
	local i
	for (( i=${#_net_cleanups[@]}-1; i>=0; i-- )); do
		eval "${_net_cleanups[$i]}" >/dev/null 2>&1 || true
	done
	_net_cleanups=()
	ip netns del "$NS_A" 2>/dev/null || true
	ip netns del "$NS_B" 2>/dev/null || true
}

in_a() { nsenter --net="/run/netns/$NS_A" "$@"; }
in_b() { nsenter --net="/run/netns/$NS_B" "$@"; }

net_setup() {
	trap net_teardown EXIT
	trap 'exit 130' INT TERM
	ip netns add "$NS_A"
	ip netns add "$NS_B"
	ip link add "$IF_A" netns "$NS_A" type veth peer name "$IF_B" netns "$NS_B"
	in_a ip link set lo up
	in_b ip link set lo up
	in_a ip addr add "$ADDR_A/24" dev "$IF_A"
	in_b ip addr add "$ADDR_B/24" dev "$IF_B"
	in_a ip link set "$IF_A" up
	in_b ip link set "$IF_B" up
	# Frames must reach the other side as they were written: no offloads
	# that leave checksums to hardware (§13, "Generic adapter").
	if command -v ethtool >/dev/null; then
		in_a ethtool -K "$IF_A" tx off rx off >/dev/null 2>&1 || true
		in_b ethtool -K "$IF_B" tx off rx off >/dev/null 2>&1 || true
	fi
}

# Starts netmapd in namespace NS (empty: the namespace this script runs in)
# on device DEV, with --backend $NET_BACKEND (default packet). It serves
# every namespace: a client's interface names are looked up in the client's.
#   net_start_daemon NS DEV LOG [netmapd options...]
# The daemon's PID is in $NET_DAEMON_PID; the function returns when the
# device is ready (or fails after 20 s).
net_start_daemon() {
	local ns=$1 dev=$2 log=$3 rc
	shift 3
	mkdir -p "$(dirname "$dev")" "$(dirname "$dev")/run"
	daemon_start "$log" "grep -q 'is ready' '$log'" 20 \
		${ns:+nsenter --net="/run/netns/$ns"} "$NETMAPD" --frontend fuse --device "$dev" \
		--run-dir "$(dirname "$dev")/run" --backend "${NET_BACKEND:-packet}" "$@" && rc=0 || rc=$?
	NET_DAEMON_PID=$DAEMON_PID
	net_add_cleanup "net_stop_daemon $NET_DAEMON_PID"
	[ $rc = 0 ] && return 0
	echo "netmapd did not come up:" >&2
	cat "$log" >&2
	return 1
}

# SIGTERM, up to 5 s, then SIGKILL (DAEMON_RC: how it ended).
net_stop_daemon() { daemon_stop "$1" 5; }
