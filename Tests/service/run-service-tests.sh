#!/usr/bin/env bash
# run-service-tests.sh: netmapd as a system service (issue 7). Ends with one line
#     service-tests: N passed, M failed
# and exits non-zero if anything failed, if a child run (the network
# namespace part, the unit in the VM) exited non-zero, or if fewer results
# arrived than each part expects (Tests/lib/results.sh). Needs root and /dev/fuse (the daemon
# runs with the FUSE-file front end on private paths under /tmp; nothing is
# installed on the host, /etc is not touched).
#
#   Tests/service/run-service-tests.sh            (or: make test-service)
#
# What it checks:
#   unit     systemd-analyze verify of systemd/netmapd.service, clean. verify
#            needs the ExecStart binary and the Documentation= man pages to
#            exist, so it runs on the unit installed under a DESTDIR, with
#            ExecStart rewritten to the binary there and MANPATH pointing at
#            the man pages there.
#   man      every page in man/ lint-clean (groff -man -ww -z, mandoc -Tlint)
#            and with the sections NAME SYNOPSIS DESCRIPTION OPTIONS
#            ENVIRONMENT FILES EXAMPLES SEE ALSO (naming netmap(4)); every
#            option of netmapd --help in netmapd.8 and as a key in
#            netmapd.conf.5, every netmapctl option in netmapctl.8.
#   install  make install DESTDIR=... produces exactly the expected files
#            (PREFIX=/usr/local and PREFIX=/usr), with their modes, the unit's
#            ExecStart and binaries that do not need the Swift toolchain; a
#            changed /etc/netmapd.conf survives install and uninstall; make
#            uninstall removes everything else.
#   config   values from a file are applied, flags override them, bad lines
#            stop the daemon with status 78 and name the file and line,
#            /etc/netmapd.conf is read by default (checked in a private mount
#            namespace, so the host's /etc is never touched).
#   control  netmapctl's counters equal the frames and bytes sent through two
#            netmap pipes at once (Tests/service/svc_traffic.c); the socket's
#            mode keeps other users out; idle, over-long, unknown and too many
#            requests neither block nor crash the daemon.
#   restart  SIGTERM during traffic releases everything; after SIGKILL during
#            traffic the leftovers (dead FUSE mount, region file, control
#            socket, lock) are there, and the next start removes them and
#            works; a second daemon on the same run directory is refused.
#   netif    in a network namespace of its own (unshare --net): a veth pair
#            through the generic backend, netmapctl's interface counters
#            exact; the tc steal program left by SIGKILL is removed at the
#            next start; none is left after SIGTERM.
#   vm       Tests/service/unit-in-vm.sh: the installed unit booted by a real
#            systemd inside the CUSE VM (capabilities, seccomp, NoNewPrivs,
#            Type=notify, RuntimeDirectory, Restart= after SIGKILL, no restart
#            on a bad configuration, udev rule, sysusers, CUSE + shim counters).
#
# Environment:
#   SVC_SCRATCH    swift scratch path (default <repo>/.build-svc); the release
#                  build for `make install` goes there too
#   NETMAPD_BIN, NETMAPCTL_BIN   use these debug binaries instead of building
#   SKIP_INSTALL=1 skip the install/uninstall/verify part (slow: release build)
#                  and the unit-in-VM run
#   SKIP_VM=1      skip the unit-in-VM run (Tests/service/unit-in-vm.sh: the
#                  installed unit booted by a real systemd inside the CUSE VM)
#   VERBOSE=1      show the logs of failed steps in full
#   KEEP=1         keep the work directory
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/Tests/service
scratch=${SVC_SCRATCH:-$root/.build-svc}
export PATH=/opt/swift/usr/bin:$PATH

daemons=()
helpers=()
. "$root/Tests/lib/results.sh"
. "$root/Tests/lib/daemon.sh"
results_init service-tests
# Results of the network-namespace part (netns_tests), which runs as a child.
NETNS_RESULTS=5

[ "$(id -u)" = 0 ] || { echo "service-tests: needs root" >&2; expect 1; result "run as root" 0; finish; }

# The interface tests run in a network namespace of their own: the script
# calls itself there as  run-service-tests.sh --in-netns WORK NETMAPD NETMAPCTL
child=0
if [ "${1:-}" = "--in-netns" ]; then
	child=1
	work=$2
	NETMAPD=$3
	NETMAPCTL=$4
	TRAFFIC=$work/svc_traffic
else
	work=$(mktemp -d /tmp/netmapd-service-tests.XXXXXX)
	chmod 0711 "$work"   # other users may pass through (the control-mode test)
fi

cleanup() {
	for p in "${helpers[@]}" "${daemons[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	for m in $(awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/mounts); do umount -l "$m" 2>/dev/null; done
	[ "$child" = 0 ] || return 0
	if [ "$results_failed" = 0 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; else echo "service-tests: work directory kept: $work" >&2; fi
}
trap cleanup EXIT

show() {  # file: the tail of a log, or all of it with VERBOSE=1
	[ -f "$1" ] || return 0
	if [ "${VERBOSE:-0}" = 1 ]; then sed 's/^/    | /' "$1"; else tail -15 "$1" | sed 's/^/    | /'; fi
}

if [ "$child" = 0 ]; then
# --- tools ----------------------------------------------------------------------
missing=()
command -v mandoc >/dev/null || missing+=(mandoc)
command -v groff >/dev/null || missing+=(groff-base)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v jq >/dev/null || missing+=(jq)
command -v gcc >/dev/null || missing+=(gcc)
command -v make >/dev/null || missing+=(make)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v unshare >/dev/null || missing+=(util-linux)
command -v tc >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
	echo "service-tests: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get install -y -qq --no-install-recommends "${missing[@]}" || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; }; } >"$work/apt.log" 2>&1 \
		|| { show "$work/apt.log"; expect 1; result "install test tools (${missing[*]})" 0 "apt-get failed"; finish; }
fi

# --- build ----------------------------------------------------------------------
expect 1
if [ -z "${NETMAPD_BIN:-}" ] || [ -z "${NETMAPCTL_BIN:-}" ]; then
	echo "service-tests: building netmapd and netmapctl (scratch $scratch)"
	ok=1
	for p in netmapd netmapctl; do
		swift build --package-path "$root" --scratch-path "$scratch" --product $p >>"$work/build.log" 2>&1 || ok=0
	done
	bin=$(swift build --package-path "$root" --scratch-path "$scratch" --show-bin-path 2>/dev/null)
	NETMAPD_BIN=${NETMAPD_BIN:-$bin/netmapd}
	NETMAPCTL_BIN=${NETMAPCTL_BIN:-$bin/netmapctl}
	[ $ok = 1 ] || { show "$work/build.log"; result "build netmapd and netmapctl" 0 "swift build failed"; finish; }
fi
NETMAPD=$NETMAPD_BIN
NETMAPCTL=$NETMAPCTL_BIN
ok=1
for p in svc_traffic svc_client; do
	gcc -O2 -Wall -Wextra -Werror -I "$root/Sources/ABI/CNetmapABI/include" -I "$root/Tests/device" \
		"$here/$p.c" -o "$work/$p" 2>>"$work/gcc.log" || ok=0
done
result "build netmapd, netmapctl and the test programs" $ok
[ $ok = 1 ] || { show "$work/gcc.log"; finish; }
TRAFFIC=$work/svc_traffic
CLIENT=$work/svc_client
fi

# --- daemon helpers ---------------------------------------------------------------
# start_daemon NAME ARGS...: starts netmapd (log $work/NAME.log) and waits for
# its control socket ($sock, set by the caller) or its exit; sets $dpid.
start_daemon() {
	local name=$1 rc
	shift
	daemon_start "$work/$name.log" "[ -S '$sock' ] && grep -q 'control socket $sock' '$work/$name.log'" 30 \
		"$NETMAPD" "$@"
	rc=$?
	dpid=$DAEMON_PID
	daemons+=("$dpid")
	return $rc
}

# stop_daemon PID: SIGTERM, wait up to 15 s; sets $drc (exit status, 999 if it hung).
stop_daemon() {
	daemon_stop "$1" 15
	drc=$DAEMON_RC
}

# leftovers DEV RUNDIR: what a stopped daemon left behind (empty: nothing).
leftovers() {
	local left=""
	[ -e "$1" ] && left="$left $1"
	grep -q " $1 " /proc/mounts && left="$left (mounted)"
	[ -n "$(ls -A "$2" 2>/dev/null)" ] && left="$left $2/{$(ls -A "$2" | tr '\n' ',' | sed 's/,$//')}"
	echo "$left"
}

# wait_line FILE TEXT SECONDS
wait_line() {
	for _ in $(seq $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

# daemon args for a private device under $work/NAME
private() {  # NAME -> sets dev, run, sock
	mkdir -p "$work/$1"
	dev=$work/$1/netmap
	run=$work/$1/run
	sock=$run/control
}

# =================================================================================
# interfaces (generic backend), in a network namespace of their own
# =================================================================================
# tc_steal IF: the tc ingress filters on IF (netmapd's steal program, if any).
tc_steal() { tc filter show dev "$1" ingress 2>/dev/null | grep -o 'netmapd[a-z_]*' | sort -u | tr '\n' ' '; }

netns_tests() {  # NETNS_RESULTS results
	expect $NETNS_RESULTS
	# No IPv6 chatter from the stack: the interfaces carry only the test's frames.
	for k in all default; do echo 1 >"/proc/sys/net/ipv6/conf/$k/disable_ipv6" 2>/dev/null; done
	if ! { ip link add nmv0 type veth peer name nmv1 && ip link set nmv0 up && ip link set nmv1 up; } 2>"$work/veth.log"; then
		show "$work/veth.log"
		result "a veth pair for the interface tests" 0 "ip link failed"
		return
	fi
	private net
	if ! start_daemon net --config /dev/null --frontend fuse --device "$dev" --run-dir "$run" --pool-buffers 8192; then
		show "$work/net.log"
		result "netmapd starts for the interface tests" 0 "did not start"
		return
	fi
	"$TRAFFIC" -d "$dev" -i nmv0 -R 700 -s 5 >"$work/if-rx.log" 2>&1 &
	local rxp=$!
	helpers+=("$rxp")
	wait_line "$work/if-rx.log" REGISTERED 30
	"$TRAFFIC" -d "$dev" -i nmv1 -n 700 -s 5 >"$work/if-tx.log" 2>&1 &
	local txp=$!
	helpers+=("$txp")
	if wait_line "$work/if-tx.log" HOLD 60 && wait_line "$work/if-rx.log" HOLD 60; then
		local tf tb rf rb j got want
		read -r tf tb < <(sed -n 's/^TOTAL pid=[0-9]* tx_frames=\([0-9]*\) tx_bytes=\([0-9]*\)$/\1 \2/p' "$work/if-tx.log")
		read -r rf rb < <(sed -n 's/^TOTAL pid=[0-9]* rx_frames=\([0-9]*\) rx_bytes=\([0-9]*\)$/\1 \2/p' "$work/if-rx.log")
		j=$("$NETMAPCTL" status --json --socket "$sock")
		ring() {  # PORT DIR
			echo "$j" | jq -r --arg p "$1" --arg d "$2" \
				'.engine.ports[] | select(.name == $p) | .rings[] | select(.direction == $d and .index == 0 and (.host | not)) | "\(.packets) \(.bytes) \(.drops)"'
		}
		got="nmv1 tx $(ring nmv1 tx); nmv0 rx $(ring nmv0 rx)"
		want="nmv1 tx $tf $tb 0; nmv0 rx $rf $rb 0"
		result "interfaces: netmapctl counters exact ($tf frames, $tb bytes nmv1 -> nmv0 through AF_PACKET)" \
			$([ "$got" = "$want" ] && [ "$tf" = 700 ] && [ "$tb" = "$rb" ] && echo 1 || echo 0) "got: $got; want: $want"
		result "interfaces: the steal program is on nmv0 while it is registered ($(tc_steal nmv0))" \
			$([ -n "$(tc_steal nmv0)" ] && echo 1 || echo 0)
	else
		show "$work/if-rx.log"
		show "$work/if-tx.log"
		result "interfaces: traffic nmv1 -> nmv0" 0 "svc_traffic did not finish"
	fi
	kill -KILL "$dpid"
	wait "$dpid" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$rxp" 2>/dev/null || kill -0 "$txp" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$rxp" "$txp" 2>/dev/null
	wait "$rxp" "$txp" 2>/dev/null
	local left
	left=$(tc_steal nmv0)
	result "interfaces: after SIGKILL the tc program is left on nmv0 ($left)" $([ -n "$left" ] && echo 1 || echo 0)
	if start_daemon net2 --config /dev/null --frontend fuse --device "$dev" --run-dir "$run" --pool-buffers 8192; then
		left=$(tc_steal nmv0)$(tc_steal nmv1)
		result "interfaces: the next start removes it" $([ -z "$left" ] && echo 1 || echo 0) "still there: $left"
		"$TRAFFIC" -d "$dev" -i nmv0 -R 10 >"$work/if-rx2.log" 2>&1 &
		rxp=$!
		helpers+=("$rxp")
		wait_line "$work/if-rx2.log" REGISTERED 30
		stop_daemon "$dpid"
		kill -KILL "$rxp" 2>/dev/null
		wait "$rxp" 2>/dev/null
		left=$(tc_steal nmv0)
		result "interfaces: SIGTERM with nmv0 registered: exit $drc, no tc program left" \
			$([ $drc = 0 ] && [ -z "$left" ] && [ -z "$(leftovers "$dev" "$run")" ] && echo 1 || echo 0) "left: $left $(leftovers "$dev" "$run")"
	else
		show "$work/net2.log"
		result "interfaces: netmapd starts again after SIGKILL" 0 "did not start"
	fi
}

if [ "$child" = 1 ]; then
	netns_tests
	finish
fi

# =================================================================================
# man pages
# =================================================================================
expect $((4 * 2 + 3))
for p in netmapd.8 netmapctl.8 netmapd.conf.5 netmapd-shim.7; do
	f=$root/man/$p
	if [ ! -f "$f" ]; then result "man/$p lint-clean" 0 "missing"; continue; fi
	out=$( { groff -man -ww -z "$f"; mandoc -Tlint "$f"; } 2>&1)
	result "man/$p lint-clean (groff -man -ww -z, mandoc -Tlint)" $([ -z "$out" ] && echo 1 || echo 0) "$(echo "$out" | head -3 | tr '\n' ' ')"
	miss=""
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT FILES EXAMPLES "SEE ALSO"; do
		grep -q "^\.SH \"*$s\"*\$" "$f" || miss="$miss $s"
	done
	grep -q '^\.BR netmap (4)' "$f" || miss="$miss netmap(4)-in-SEE-ALSO"
	result "man/$p has the required sections" $([ -z "$miss" ] && echo 1 || echo 0) "missing:$miss"
done

# Every option the programs have is documented (others add options too).
esc() { printf '%s' "$1" | sed 's/-/\\-/g'; }
miss8=""
miss5=""
for o in $("$NETMAPD" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
	[ "$o" = --help ] && continue
	grep -qF -- "$(esc "$o")" "$root/man/netmapd.8" || miss8="$miss8 $o"
	k=${o#--}
	[ "$k" = config ] && continue
	grep -qE -- "^\.B[IR] $(esc "$k" | sed 's/\\/\\\\/g') " "$root/man/netmapd.conf.5" || miss5="$miss5 $k"
done
result "every netmapd option (netmapd --help) is in netmapd.8" $([ -z "$miss8" ] && echo 1 || echo 0) "missing:$miss8"
result "every netmapd option is a key in netmapd.conf.5" $([ -z "$miss5" ] && echo 1 || echo 0) "missing:$miss5"
miss=""
for o in $( { "$NETMAPCTL" --help; "$NETMAPCTL" status --help; "$NETMAPCTL" version --help; } | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
	[ "$o" = --help ] && continue
	grep -qF -- "$(esc "$o")" "$root/man/netmapctl.8" || miss="$miss $o"
done
result "every netmapctl option is in netmapctl.8" $([ -z "$miss" ] && echo 1 || echo 0) "missing:$miss"

# =================================================================================
# make install / uninstall, systemd-analyze verify
# =================================================================================
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
	expect $((2 * 6 + 4))   # 6 a prefix, 4 for the configuration file
	expected_tree() {  # PREFIX
		local p=${1#/}
		cat <<-EOF | sort
		./$p/sbin/netmapd
		./$p/bin/netmapctl
		./$p/lib/netmapd/libnetmapd-shim.so
		./$p/lib/systemd/system/netmapd.service
		./$p/lib/udev/rules.d/60-netmapd.rules
		./$p/lib/modules-load.d/netmapd.conf
		./$p/lib/sysusers.d/netmapd.conf
		./$p/share/man/man5/netmapd.conf.5
		./$p/share/man/man7/netmapd-shim.7
		./$p/share/man/man8/netmapctl.8
		./$p/share/man/man8/netmapd.8
		./$p/include/net/netmap.h
		./$p/include/net/netmap_user.h
		./$p/share/pkgconfig/netmapd.pc
		./etc/netmapd.conf
		EOF
	}
	tree() { (cd "$1" && find . -type f -o -type l | sort); }

	for prefix in /usr/local /usr; do
		tag=${prefix//\//-}
		d=$work/destdir$tag
		echo "service-tests: make install PREFIX=$prefix DESTDIR=$d (release build, may take minutes)"
		if make -C "$root" --no-print-directory install PREFIX="$prefix" DESTDIR="$d" INSTALL_SCRATCH="$scratch" >"$work/install$tag.log" 2>&1 \
			&& [ -d "$d" ]; then
			diffs=$(diff <(expected_tree "$prefix") <(tree "$d") | grep '^[<>]' | tr '\n' ' ')
			result "make install PREFIX=$prefix DESTDIR=...: exactly the expected files" $([ -z "$diffs" ] && echo 1 || echo 0) "$diffs"
		else
			show "$work/install$tag.log"
			result "make install PREFIX=$prefix DESTDIR=..." 0 "make install failed"
			continue
		fi
		bad=""
		for f in sbin/netmapd bin/netmapctl; do
			[ "$(stat -c %a "$d$prefix/$f")" = 755 ] || bad="$bad $f:$(stat -c %a "$d$prefix/$f")"
		done
		while read -r f; do
			case "$f" in */sbin/netmapd|*/bin/netmapctl) continue ;; esac
			[ "$(stat -c %a "$d/$f")" = 644 ] || bad="$bad $f:$(stat -c %a "$d/$f")"
		done < <(tree "$d")
		result "installed modes (binaries 0755, the rest 0644)" $([ -z "$bad" ] && echo 1 || echo 0) "$bad"
		unitdir=$d$prefix/lib/systemd/system
		es=$(grep '^ExecStart=' "$unitdir/netmapd.service")
		result "installed unit: $es" $([ "$es" = "ExecStart=$prefix/sbin/netmapd" ] && echo 1 || echo 0)
		shimref=$(grep -c "$prefix/lib/netmapd/libnetmapd" "$d$prefix/share/man/man7/netmapd-shim.7")
		result "installed man pages name the installed shim path" $([ "$shimref" -ge 1 ] && echo 1 || echo 0)

		# The binaries must run without the Swift toolchain's libraries.
		swiftlibs=$(ldd "$d$prefix/sbin/netmapd" "$d$prefix/bin/netmapctl" 2>&1 | grep -c -i 'swift\|not found')
		ver=$(env -i PATH=/usr/bin:/bin "$d$prefix/bin/netmapctl" --version 2>&1)
		result "installed binaries need no Swift runtime (static stdlib; netmapctl --version: $ver)" \
			$([ "$swiftlibs" = 0 ] && [ -n "$ver" ] && echo 1 || echo 0) "$swiftlibs Swift/missing libraries"

		# systemd-analyze verify: the installed unit with ExecStart pointing at
		# the installed binary (it must exist) and MANPATH at the installed
		# pages (Documentation=man:... are looked up).
		mkdir -p "$work/verify$tag"
		sed "s|^ExecStart=$prefix/sbin/netmapd|ExecStart=$d$prefix/sbin/netmapd|" "$unitdir/netmapd.service" \
			>"$work/verify$tag/netmapd.service"
		out=$(cd "$work/verify$tag" && MANPATH=$d$prefix/share/man systemd-analyze verify "$work/verify$tag/netmapd.service" 2>&1)
		vrc=$?
		result "systemd-analyze verify netmapd.service (PREFIX=$prefix) is clean" \
			$([ $vrc = 0 ] && [ -z "$out" ] && echo 1 || echo 0) "rc $vrc: $(echo "$out" | head -3 | tr '\n' ' ')"
	done

	d=$work/destdir-usr-local
	if [ -f "$d/etc/netmapd.conf" ]; then
		# A changed configuration file survives install and uninstall.
		echo "# the admin's own" >>"$d/etc/netmapd.conf"
		sum=$(md5sum <"$d/etc/netmapd.conf")
		make -C "$root" --no-print-directory install DESTDIR="$d" INSTALL_SCRATCH="$scratch" >"$work/reinstall.log" 2>&1
		result "make install keeps an existing /etc/netmapd.conf" \
			$([ "$(md5sum <"$d/etc/netmapd.conf")" = "$sum" ] && grep -q "keeping the existing" "$work/reinstall.log" && echo 1 || echo 0)
		make -C "$root" --no-print-directory uninstall DESTDIR="$d" >"$work/uninstall1.log" 2>&1
		left=$(tree "$d" | tr '\n' ' ')
		result "make uninstall removes every file but a changed /etc/netmapd.conf" \
			$([ "$left" = "./etc/netmapd.conf " ] && echo 1 || echo 0) "left: $left"
		cp "$root/systemd/etc/netmapd.conf" "$d/etc/netmapd.conf"
		make -C "$root" --no-print-directory uninstall DESTDIR="$d" >"$work/uninstall2.log" 2>&1
		left=$(tree "$d" | tr '\n' ' ')
		result "make uninstall removes an unchanged /etc/netmapd.conf too: nothing left" $([ -z "$left" ] && echo 1 || echo 0) "left: $left"
		d=$work/destdir-usr
		make -C "$root" --no-print-directory uninstall PREFIX=/usr DESTDIR="$d" >"$work/uninstall3.log" 2>&1
		left=$(tree "$d" | tr '\n' ' ')
		result "make uninstall PREFIX=/usr: nothing left" $([ -z "$left" ] && echo 1 || echo 0) "left: $left"
	fi
else
	echo "service-tests: SKIP_INSTALL=1: install, uninstall and systemd-analyze verify skipped"
fi

# =================================================================================
# configuration file
# =================================================================================
expect 2
private cfg
cat >"$work/cfg/netmapd.conf" <<EOF
# a test configuration
frontend = fuse
device = $dev
run-dir = "$run"
mode = 0640
pool-buffers = 4096    # 8 MiB of buffers

control-mode = 0660
verbose = yes
EOF
if start_daemon cfg --config "$work/cfg/netmapd.conf"; then
	j=$("$NETMAPCTL" status --json --socket "$sock")
	got="device $(stat -c %a "$dev") region $(stat -c %a "$run/region-1") socket $(stat -c %a "$sock") buffers $(echo "$j" | jq .engine.pool.totalBuffers) frontend $(echo "$j" | jq -r .daemon.frontend)"
	want="device 640 region 640 socket 660 buffers 4094 frontend fuse"
	result "config file values applied ($got)" $([ "$got" = "$want" ] && echo 1 || echo 0) "want $want"
	stop_daemon "$dpid"
else
	show "$work/cfg.log"
	result "netmapd starts with --config" 0 "did not start"
fi
if start_daemon cfg2 --config "$work/cfg/netmapd.conf" --mode 0600 --pool-buffers 8192 --control-mode 0600; then
	j=$("$NETMAPCTL" status --json --socket "$sock")
	got="device $(stat -c %a "$dev") socket $(stat -c %a "$sock") buffers $(echo "$j" | jq .engine.pool.totalBuffers) frontend $(echo "$j" | jq -r .daemon.frontend)"
	want="device 600 socket 600 buffers 8190 frontend fuse"
	result "command-line flags override the file ($got)" $([ "$got" = "$want" ] && echo 1 || echo 0) "want $want"
	stop_daemon "$dpid"
else
	show "$work/cfg2.log"
	result "netmapd starts with --config and overriding flags" 0 "did not start"
fi

# bad files: content | line | text the message must contain
bad_cases=(
	"frontend = bogus|2|bad value for 'frontend'"
	"nosuchkey = 1|2|unknown key 'nosuchkey'"
	"mode = 0999|2|--mode must be octal"
	"pool-buffers = lots|2|bad value for 'pool-buffers'"
	"verbose = perhaps|2|'verbose' is a switch"
	"just some words|2|expected 'key = value'"
	"mode = 0600\nmode = 0640|3|'mode' is set twice (first on line 2)"
	"config = /etc/other.conf|2|'config' cannot be set"
	"group = \"unterminated|2|unterminated quote"
	"threads =|2|no value for 'threads'"
	"Device = /dev/x|2|bad key 'Device'"
)
expect $((${#bad_cases[@]} + 4))
i=0
for c in "${bad_cases[@]}"; do
	i=$((i + 1))
	IFS='|' read -r content line text <<<"$c"
	f=$work/cfg/bad$i.conf
	printf "# line 1 is a comment\n$content\n" >"$f"
	err=$("$NETMAPD" --config "$f" --run-dir "$work/cfg/none" 2>&1 >/dev/null)
	rc=$?
	ok=0
	[ $rc = 78 ] && [[ "$err" == *"$f:$line: "* ]] && [[ "$err" == *"$text"* ]] && ok=1
	result "bad config line ($(printf "$content" | tr '\n' ';')): exit 78, names $f:$line" $ok "rc $rc: $err"
done
result "a bad configuration stops the daemon before it creates anything" $([ ! -e "$work/cfg/none" ] && echo 1 || echo 0)
err=$("$NETMAPD" --config "$work/cfg/absent.conf" 2>&1 >/dev/null)
rc=$?
result "a missing --config file: exit 78 with the reason" \
	$([ $rc = 78 ] && [[ "$err" == *"cannot read configuration file $work/cfg/absent.conf"* ]] && echo 1 || echo 0) "rc $rc: $err"

# /etc/netmapd.conf is the default: shown with a bad one, in a private mount
# namespace whose /etc is a copy (the host's /etc is not touched).
mkdir -p "$work/etc-copy"
cp -a /etc/. "$work/etc-copy/" 2>/dev/null
printf "# default file\nfrontend = nonsense\n" >"$work/etc-copy/netmapd.conf"
err=$(unshare --mount --propagation private sh -c 'mount --bind "$1" /etc && exec "$2" --run-dir "$3"' sh \
	"$work/etc-copy" "$NETMAPD" "$work/cfg/none" 2>&1 >/dev/null)
rc=$?
result "/etc/netmapd.conf is read when --config is not given" \
	$([ $rc = 78 ] && [[ "$err" == *"/etc/netmapd.conf:2: bad value for 'frontend'"* ]] && echo 1 || echo 0) "rc $rc: $err"
err=$(unshare --mount --propagation private sh -c 'mount --bind "$1" /etc && exec "$2" --config /dev/null --pool-buffers 1' sh \
	"$work/etc-copy" "$NETMAPD" 2>&1 >/dev/null)
rc=$?
result "--config replaces /etc/netmapd.conf (--config /dev/null reads nothing)" \
	$([ $rc = 64 ] && [[ "$err" == *"--pool-buffers must be"* ]] && echo 1 || echo 0) "rc $rc: $err"

# =================================================================================
# control socket and netmapctl
# =================================================================================
private ctl
expect 22
if start_daemon ctl --config /dev/null --frontend fuse --device "$dev" --run-dir "$run" --pool-buffers 16384; then
	# Two pipes at once, different traffic in each direction.
	"$TRAFFIC" -d "$dev" -p svcA$$ -n 5000 -r 1234 -s 11 >"$work/trafficA.log" 2>&1 &
	ta=$!
	helpers+=("$ta")
	"$TRAFFIC" -d "$dev" -p svcB$$ -n 777 -r 3001 -s 12 >"$work/trafficB.log" 2>&1 &
	tb=$!
	helpers+=("$tb")
	if wait_line "$work/trafficA.log" HOLD 60 && wait_line "$work/trafficB.log" HOLD 60; then
		j=$("$NETMAPCTL" status --json --socket "$sock")
		echo "$j" >"$work/status.json"
		"$NETMAPCTL" status --socket "$sock" >"$work/status.txt"
		for t in A:$ta B:$tb; do
			n=${t%%:*}
			pid=${t#*:}
			read -r a2b_f a2b_b b2a_f b2a_b < <(sed -n 's/^TOTAL pid=[0-9]* a2b_frames=\([0-9]*\) a2b_bytes=\([0-9]*\) b2a_frames=\([0-9]*\) b2a_bytes=\([0-9]*\)$/\1 \2 \3 \4/p' "$work/traffic$n.log")
			m="svc$n$$"{1
			s="svc$n$$"}1
			ring() {  # PORT DIR -> "packets bytes drops"
				echo "$j" | jq -r --arg p "$1" --arg d "$2" \
					'.engine.ports[] | select(.name == $p) | .rings[] | select(.direction == $d and .index == 0 and (.host | not)) | "\(.packets) \(.bytes) \(.drops)"'
			}
			got="$m tx $(ring "$m" tx) rx $(ring "$m" rx); $s tx $(ring "$s" tx) rx $(ring "$s" rx)"
			want="$m tx $a2b_f $a2b_b 0 rx $b2a_f $b2a_b 0; $s tx $b2a_f $b2a_b 0 rx $a2b_f $a2b_b 0"
			result "netmapctl --json counters exact, pipe $n ($a2b_f frames/$a2b_b bytes one way, $b2a_f/$b2a_b back)" \
				$([ "$got" = "$want" ] && echo 1 || echo 0) "got: $got; want: $want"
			cl=$(echo "$j" | jq -r --argjson pid "$pid" '[.engine.clients[] | select(.pid == $pid) | "\(.port) tx\(.txRings) rx\(.rxRings)"] | sort | join("; ")')
			result "netmapctl --json clients: pid $pid bound to both ends' rings" \
				$([ "$cl" = "$m tx[0] rx[0]; $s tx[0] rx[0]" ] && echo 1 || echo 0) "got: $cl"
			# The table shows the same numbers (then DROPS 0, BAD SLOTS 0).
			tline=$(grep -F "$m" "$work/status.txt" | grep -E ' tx 0 ' | tr -s ' ')
			result "netmapctl status table: $tline" \
				$([[ "$tline" == *"tx 0 "*" $a2b_f $a2b_b 0 0" ]] && echo 1 || echo 0)
		done
		be=$(echo "$j" | jq -r '[.engine.ports[].backend] | unique | join(",")')
		fe=$(echo "$j" | jq -r '"\(.daemon.frontend) \(.daemon.device) \(.engine.pool.ports) ports \(.engine.pool.sessions) files"')
		result "netmapctl --json: front end, device, 4 pipe ports, 4 files ($fe; backend $be)" \
			$([ "$fe" = "fuse $dev 4 ports 4 files" ] && [ "$be" = pipe ] && echo 1 || echo 0)
		grep -q "^front end   fuse, device $dev" "$work/status.txt"
		result "netmapctl status shows the front end and device" $([ $? = 0 ] && echo 1 || echo 0)
	else
		show "$work/trafficA.log"
		show "$work/trafficB.log"
		result "known traffic through two pipes" 0 "svc_traffic did not finish"
	fi
	kill -USR1 "$ta" "$tb" 2>/dev/null
	wait "$ta"
	ra=$?
	wait "$tb"
	rb=$?
	result "traffic programs close cleanly" $([ $ra = 0 ] && [ $rb = 0 ] && echo 1 || echo 0) "exit $ra, $rb"
	j=""
	for _ in $(seq 50); do
		j=$("$NETMAPCTL" status --json --socket "$sock")
		[ "$(echo "$j" | jq '.engine.pool.ports')" = 0 ] && break
		sleep 0.1
	done
	got=$(echo "$j" | jq -r '"\(.engine.ports | length) ports, \(.engine.clients | length) clients, \(.engine.pool.freeBuffers)/\(.engine.pool.totalBuffers) buffers free"')
	result "after the programs exit: $got" $([[ "$got" == "0 ports, 0 clients, 16382/16382 buffers free" ]] && echo 1 || echo 0)

	# Who may ask: mode 0600 root:root keeps other users out.
	out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$NETMAPCTL" status --socket "$sock" 2>&1)
	rc=$?
	result "control socket 0600: another user is refused (exit 1, permission denied)" \
		$([ $rc = 1 ] && [[ "$out" == *"permission denied"* ]] && echo 1 || echo 0) "rc $rc: $out"

	# Awkward clients.
	r=$("$CLIENT" "$sock" line "bogus request")
	result "unknown request: an error reply ($r)" $([[ "$r" == '{"error":"unknown request '* ]] && echo 1 || echo 0)
	r=$("$CLIENT" "$sock" line version)
	result "version request ($r)" $([[ "$r" == *'"protocolVersion":1'* ]] && echo 1 || echo 0)
	r=$("$CLIENT" "$sock" long 100000 | tr '\n' ' ')
	result "over-long request: error reply and hang-up ($r)" $([[ "$r" == *"request too long"*EOF* ]] && echo 1 || echo 0)
	"$CLIENT" "$sock" idle 3 7 >"$work/idle3.log" 2>&1 &
	ci=$!
	helpers+=("$ci")
	sleep 0.5
	t0=$(date +%s%N)
	"$NETMAPCTL" status --socket "$sock" >/dev/null 2>&1
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	result "3 idle connections do not delay netmapctl (${ms} ms)" $([ $rc = 0 ] && [ $ms -lt 2000 ] && echo 1 || echo 0) "rc $rc"
	wait "$ci"
	result "idle connections are closed by the daemon after 5 s ($(tr '\n' ' ' <"$work/idle3.log"))" \
		$(grep -q '^closed=3$' "$work/idle3.log" && echo 1 || echo 0)
	r=$("$CLIENT" "$sock" idle 20 6 | tr '\n' ' ')
	result "20 connections at once: 8 served, 12 told busy, all closed ($r)" $([ "$r" = "busy=12 closed=20 " ] && echo 1 || echo 0)
	out=$("$NETMAPCTL" status --socket "$sock" 2>&1 | head -1)
	alive=$(kill -0 "$dpid" 2>/dev/null && echo 1 || echo 0)
	result "daemon alive and answering after the awkward clients ($out)" $([ $alive = 1 ] && [[ "$out" == "netmapd "* ]] && echo 1 || echo 0)

	# A second daemon on the same run directory is refused and changes nothing.
	ino=$(stat -c %i "$run/region-1")
	err=$("$NETMAPD" --config /dev/null --frontend fuse --device "$work/ctl/netmap2" --run-dir "$run" 2>&1)
	rc=$?
	result "a second netmapd on the same run directory is refused (exit 1, names pid $dpid)" \
		$([ $rc = 1 ] && [[ "$err" == *"another netmapd (pid $dpid) is running"* ]] && echo 1 || echo 0) "rc $rc: $err"
	result "... and the first one's region file and socket are untouched" \
		$([ "$(stat -c %i "$run/region-1")" = "$ino" ] && "$NETMAPCTL" status --socket "$sock" >/dev/null && echo 1 || echo 0)

	stop_daemon "$dpid"
	left=$(leftovers "$dev" "$run")
	result "netmapd stops (exit $drc) and removes device, region, control socket and lock" \
		$([ $drc = 0 ] && [ -z "$left" ] && echo 1 || echo 0) "left:$left"
	out=$("$NETMAPCTL" status --socket "$sock" 2>&1)
	rc=$?
	result "netmapctl without a daemon: exit 1 with a reason" $([ $rc = 1 ] && [[ "$out" == *"no control socket"* ]] && echo 1 || echo 0) "rc $rc: $out"
else
	show "$work/ctl.log"
	result "netmapd starts for the control tests" 0 "did not start"
fi

# control-mode/control-group open the socket to others.
private ctl2
expect 1
if start_daemon ctl2 --config /dev/null --frontend fuse --device "$dev" --run-dir "$run" --pool-buffers 4096 \
	--control-mode 0660 --control-group nogroup; then
	got="$(stat -c '%a %G' "$sock")"
	out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$NETMAPCTL" status --socket "$sock" 2>&1 | head -1)
	result "control-mode 0660 + control-group nogroup ($got): user nobody may ask" \
		$([ "$got" = "660 nogroup" ] && [[ "$out" == "netmapd "* ]] && echo 1 || echo 0) "$out"
	stop_daemon "$dpid"
else
	show "$work/ctl2.log"
	result "netmapd starts with --control-group" 0 "did not start"
fi

# =================================================================================
# stop during traffic, restart after SIGKILL
# =================================================================================
private stop
expect 1
if start_daemon stop --config /dev/null --frontend fuse --device "$dev" --run-dir "$run" --pool-buffers 8192; then
	"$TRAFFIC" -d "$dev" -p svcS$$ -n 100000000 -r 0 >"$work/trafficS.log" 2>&1 &
	ts=$!
	helpers+=("$ts")
	sleep 1
	moving=$("$NETMAPCTL" status --json --socket "$sock" | jq '[.engine.ports[].rings[].packets] | add // 0')
	stop_daemon "$dpid"
	gone=0
	for _ in $(seq 100); do kill -0 "$ts" 2>/dev/null || { gone=1; break; }; sleep 0.1; done
	left=$(leftovers "$dev" "$run")
	result "SIGTERM during traffic ($moving packets so far): exit $drc, nothing left, the client gets errors and ends" \
		$([ $drc = 0 ] && [ -z "$left" ] && [ $gone = 1 ] && [ "$moving" -gt 0 ] && echo 1 || echo 0) "left:$left; client gone $gone"
	kill -KILL "$ts" 2>/dev/null
	wait "$ts" 2>/dev/null
else
	show "$work/stop.log"
	result "netmapd starts for the stop test" 0 "did not start"
fi

private kill
expect 7
if start_daemon kill1 --config /dev/null --frontend fuse --device "$dev" --run-dir "$run" --pool-buffers 8192; then
	first=$dpid
	"$TRAFFIC" -d "$dev" -p svcK$$ -n 100000000 -r 0 >"$work/trafficK.log" 2>&1 &
	tk=$!
	helpers+=("$tk")
	sleep 1
	kill -KILL "$first"
	wait "$first" 2>/dev/null
	gone=0
	for _ in $(seq 100); do kill -0 "$tk" 2>/dev/null || { gone=1; break; }; sleep 0.1; done
	kill -KILL "$tk" 2>/dev/null
	wait "$tk" 2>/dev/null
	left=$(leftovers "$dev" "$run")
	result "after SIGKILL during traffic the leftovers are there:$left" \
		$([[ "$left" == *"(mounted)"* && "$left" == *region-1* && "$left" == *control* && "$left" == *netmapd.pid* ]] && echo 1 || echo 0)
	result "... and the client of the killed daemon gets errors and ends" $gone
	if start_daemon kill2 --config /dev/null --frontend fuse --device "$dev" --run-dir "$run" --pool-buffers 8192; then
		second=$dpid
		log=$work/kill2.log
		result "restart after SIGKILL: ready, stale FUSE mount detached, stale control socket replaced" \
			$(grep -q "detaching stale FUSE mount at $dev" "$log" && grep -q "removing stale control socket $sock" "$log" && echo 1 || echo 0)
		pid=$("$NETMAPCTL" status --json --socket "$sock" | jq .daemon.pid)
		result "netmapctl reaches the new daemon (pid $pid)" $([ "$pid" = "$second" ] && echo 1 || echo 0)
		"$TRAFFIC" -d "$dev" -p svcR$$ -n 3000 -r 300 >"$work/trafficR.log" 2>&1 &
		tr_=$!
		helpers+=("$tr_")
		if wait_line "$work/trafficR.log" HOLD 60; then
			read -r a2b_f a2b_b < <(sed -n 's/^TOTAL.* a2b_frames=\([0-9]*\) a2b_bytes=\([0-9]*\) .*/\1 \2/p' "$work/trafficR.log")
			got=$("$NETMAPCTL" status --json --socket "$sock" | jq -r --arg p "svcR$$}1" \
				'.engine.ports[] | select(.name == $p) | .rings[] | select(.direction == "rx" and .index == 0) | "\(.packets) \(.bytes)"')
			result "traffic through the restarted daemon, counters exact ($got)" $([ "$got" = "$a2b_f $a2b_b" ] && echo 1 || echo 0)
		else
			show "$work/trafficR.log"
			result "traffic through the restarted daemon" 0 "svc_traffic did not finish"
		fi
		kill -USR1 "$tr_" 2>/dev/null
		wait "$tr_"
		stop_daemon "$second"
		left=$(leftovers "$dev" "$run")
		result "the restarted daemon stops (exit $drc) and leaves nothing" $([ $drc = 0 ] && [ -z "$left" ] && echo 1 || echo 0) "left:$left"
		bad=$(grep -E '^netmapd\[[0-9]+\]: (error|critical)' "$log" | head -3)
		result "the restarted daemon logged no errors" $([ -z "$bad" ] && echo 1 || echo 0) "$bad"
	else
		show "$work/kill2.log"
		result "restart after SIGKILL" 0 "the second daemon did not start"
	fi
else
	show "$work/kill1.log"
	result "netmapd starts for the SIGKILL test" 0 "did not start"
fi

# =================================================================================
# interfaces: the same script in a fresh network namespace
# =================================================================================
if command -v ip >/dev/null && command -v tc >/dev/null; then
	unshare --net "$0" --in-netns "$work" "$NETMAPD" "$NETMAPCTL" >"$work/netns.out" 2>&1
	nrc=$?
	grep -v -E '^(ok|not ok) - |^service-tests: ' "$work/netns.out"
	child_results "network namespace" $nrc "$work/netns.out" $NETNS_RESULTS
else
	expect 1
	result "interface tests need ip and tc (iproute2)" 0 "not installed"
fi

# =================================================================================
# the installed unit under a real systemd, in the CUSE VM
# =================================================================================
if [ "${SKIP_VM:-0}" != 1 ] && [ "${SKIP_INSTALL:-0}" != 1 ]; then
	echo "service-tests: the unit under systemd in the VM (Tests/service/unit-in-vm.sh, a few minutes)"
	SVC_SCRATCH=$scratch "$here/unit-in-vm.sh" >"$work/unit-in-vm.out" 2>&1
	urc=$?
	child_results "unit in VM" $urc "$work/unit-in-vm.out" || grep -E '^unit-in-vm: logs' "$work/unit-in-vm.out"
else
	echo "service-tests: SKIP_VM=1 or SKIP_INSTALL=1: the unit-in-VM run skipped"
fi

finish
