#!/usr/bin/env bash
# run-headers-tests.sh: netmapd's netmap-compatible headers as a user gets
# them. `make install-headers` into a scratch root; pkg-config finds them
# there (netmapd.pc); a netmap program (nm_headers.c) compiles with only
# those flags (C11, -Werror), the headers compile as C++ too; then the
# program runs against a netmapd on a private FUSE-file device: nm_open's
# names and errors, a pipe's two ends on one mapping, 200000 frames through
# nm_inject / nm_dispatch / nm_nextpkt (nm_headers.c's header lists every
# check). About 5 s. Needs root and /dev/fuse.
#
#   Tests/headers/run-headers-tests.sh [NETMAPD]
#
# Ends with "headers-tests: N passed, M failed" (Tests/lib/results.sh).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/Tests/lib/results.sh"
. "$root/Tests/lib/daemon.sh"
results_init headers-tests
abort() { expect 1; result "$1" 0 "${2:-}"; finish; }
[ "$(id -u)" = 0 ] || abort "run as root"

NETMAPD=${1:-${NETMAPD:-$root/.build/debug/netmapd}}
[ -x "$NETMAPD" ] || abort "netmapd binary" "$NETMAPD is not executable (swift build --product netmapd)"

work=$(mktemp -d /tmp/netmapd-headers.XXXXXX)
pid=
cleanup() {
	[ -z "$pid" ] || daemon_stop "$pid" 10
	grep -q " $work/netmap " /proc/mounts && umount -l "$work/netmap"
	if [ "$results_failed" = 0 ]; then rm -rf "$work"; else echo "headers-tests: logs kept in $work" >&2; fi
}
trap cleanup EXIT

expect 7
make -s -C "$root" install-headers DESTDIR="$work/root" PREFIX=/usr/local >"$work/install.log" 2>&1
check "make install-headers puts net/netmap.h, net/netmap_user.h and netmapd.pc in place" \
	test -f "$work/root/usr/local/include/net/netmap.h" -a -f "$work/root/usr/local/include/net/netmap_user.h" \
	-a -f "$work/root/usr/local/share/pkgconfig/netmapd.pc" || cat "$work/install.log"

pc() { PKG_CONFIG_SYSROOT_DIR="$work/root" PKG_CONFIG_LIBDIR="$work/root/usr/local/share/pkgconfig" pkg-config "$@"; }
cflags=$(pc --cflags netmapd); cflags=${cflags% }
version=$(sed -n 's/.*softwareVersion = "\(.*\)"/\1/p' "$root/Sources/Control/NetmapControl/ControlProtocol.swift")
check "pkg-config netmapd: --cflags '$cflags', --modversion $(pc --modversion netmapd) (netmapd $version)" \
	test "$cflags" = "-I$work/root/usr/local/include" -a "$(pc --modversion netmapd)" = "$version"

# Only the installed headers: nothing from the source tree is on the path.
gcc -std=c11 -O2 -Wall -Wextra -Werror $cflags -o "$work/nm_headers" "$here/nm_headers.c" >"$work/cc.log" 2>&1
check "nm_headers.c compiles against the installed headers alone (C11, -Wall -Wextra -Werror; layouts and constants asserted)" \
	test $? = 0 || cat "$work/cc.log"
printf '#define NETMAP_WITH_LIBS\n#include <net/netmap_user.h>\nint main() { return NETMAP_API == 14 ? 0 : 1; }\n' |
	g++ -Wall -Wextra -Werror $cflags -x c++ -o "$work/cxx" - >"$work/cxx.log" 2>&1
check "the headers compile as C++ too" test $? = 0 || cat "$work/cxx.log"

mkdir -p "$work/run"
daemon_start "$work/netmapd.log" "grep -q 'is ready' '$work/netmapd.log'" 20 \
	"$NETMAPD" --frontend fuse --device "$work/netmap" --run-dir "$work/run" && pid=$DAEMON_PID
check "netmapd starts on $work/netmap" test -n "$pid" || { cat "$work/netmapd.log"; finish; }

results_quiet=0
"$work/nm_headers" "$work/netmap" 200000 >"$work/nm_headers.out" 2>&1
rc=$?
cat "$work/nm_headers.out"
results_quiet=1 child_results nm_headers $rc "$work/nm_headers.out" 15

daemon_stop "$pid" 10
pid=
check "netmapd exits 0 on SIGTERM" test "$DAEMON_RC" = 0 || tail -20 "$work/netmapd.log"
check "the FUSE file is unmounted" eval "! grep -q ' $work/netmap ' /proc/mounts"
finish
