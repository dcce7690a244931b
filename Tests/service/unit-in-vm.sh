#!/usr/bin/env bash
# unit-in-vm.sh: the installed netmapd.service booted by a real systemd, in
# the test VM (Tests/vm/run-in-vm.sh: Debian's kernel, CUSE, the host root
# read-only). Prints "ok - ..." / "not ok - ..." lines and ends with
#     unit-in-vm: N passed, M failed
# exiting non-zero if anything failed. Needs root and qemu (installed by the
# VM harness). About a minute.
#
#   Tests/service/unit-in-vm.sh
#
# systemd is not PID 1 in that VM (a busybox init runs the test command in a
# chroot), so the command starts /lib/systemd/systemd as PID 1 of a new PID
# and mount namespace (container mode, like systemd-nspawn does), with the
# units under /run/systemd/system. That is a real service manager: it applies
# the unit's capability bounding set, NoNewPrivileges, seccomp filter, device
# cgroup, RuntimeDirectory=, Type=notify and Restart=. Not covered: udevd
# (udevadm test checks the rule instead) and modules-load.d (the VM has no
# module tree for its kernel; its init loads cuse itself).
#
# What is installed is what `make install DESTDIR=...` produces (release
# build, scratch $SVC_SCRATCH, default <repo>/.build-svc); only ExecStart is
# rewritten to the DESTDIR path. /etc in the VM is a writable copy of the
# host's, with the installed /etc/netmapd.conf, the group from the installed
# sysusers.d file and the installed udev rule.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
export PATH=/opt/swift/usr/bin:$PATH
# The checks under systemd (--checks below) give exactly this many results.
UNIT_VM_RESULTS=15

# =============================================================================
# inside the VM, as PID 1's command: set up, run systemd, report
# =============================================================================
if [ "${1:-}" = "--guest" ]; then
	R=$NETMAPD_VM_RESULTS
	D=$R/root
	: >"$R/results.txt"
	# A writable /etc: the installed configuration, group and udev rule.
	mkdir -p /run/etc
	cp -a /etc/. /run/etc/
	mount --bind /run/etc /etc
	cp "$D/etc/netmapd.conf" /etc/netmapd.conf
	# Interfaces through the generic backend (AF_PACKET + tc BPF): AF_XDP on
	# veth is the native backend's own test matter.
	# (UNIT_VM_BACKEND=auto|xdp tries the native one under the unit instead.)
	echo "backend = ${UNIT_VM_BACKEND:-packet}" >>/etc/netmapd.conf
	mkdir -p /etc/sysusers.d /etc/udev/rules.d /run/systemd/system
	cp "$D/usr/local/lib/sysusers.d/netmapd.conf" /etc/sysusers.d/netmapd.conf
	cp "$D/usr/local/lib/udev/rules.d/60-netmapd.rules" /etc/udev/rules.d/
	systemd-sysusers /etc/sysusers.d/netmapd.conf >"$R/sysusers.log" 2>&1
	sed "s|^ExecStart=/usr/local/sbin/netmapd|ExecStart=$D/usr/local/sbin/netmapd|" \
		"$D/usr/local/lib/systemd/system/netmapd.service" >/run/systemd/system/netmapd.service
	cat >/run/systemd/system/svc-check.service <<-EOF
	[Unit]
	Description=netmapd unit checks
	Wants=netmapd.service
	After=netmapd.service
	[Service]
	Type=oneshot
	Environment=NETMAPD_VM_RESULTS=$R
	ExecStart=/bin/bash $0 --checks
	StandardOutput=append:$R/check.log
	StandardError=append:$R/check.log
	EOF
	cat >/run/systemd/system/svc-test.target <<-EOF
	[Unit]
	Description=netmapd unit test
	Wants=svc-check.service
	EOF
	echo "guest: starting systemd (kernel $(uname -r))"
	unshare --pid --fork --mount-proc --mount --propagation private \
		env container=netmapd-vm /lib/systemd/systemd --unit=svc-test.target \
		--log-target=console --show-status=no >"$R/systemd.log" 2>&1
	echo "guest: systemd exited $?"
	cat "$R/results.txt"
	# The host counts these against UNIT_VM_RESULTS.
	echo "guest: $(grep -c '^ok - ' "$R/results.txt") passed, $(grep -c '^not ok - ' "$R/results.txt") failed"
	exit 0
fi

# =============================================================================
# inside the VM, as a oneshot service under that systemd: the checks
# =============================================================================
if [ "${1:-}" = "--checks" ]; then
	R=$NETMAPD_VM_RESULTS
	D=$R/root
	CTL=$D/usr/local/bin/netmapctl
	SHIM=$D/usr/local/lib/netmapd/libnetmapd-shim.so
	TRAFFIC=$R/svc_traffic
	out=$R/results.txt
	result() { if [ "$2" = 1 ]; then echo "ok - $1" >>"$out"; else echo "not ok - $1${3:+: $3}" >>"$out"; fi; }
	prop() { systemctl show -P "$1" netmapd; }
	# as_user: a member of group netmap (not root) with the preload shim
	as_user() { setpriv --reuid=nobody --regid=nogroup --groups="$(getent group netmap | cut -d: -f3)" env LD_PRELOAD="$SHIM" "$@"; }
	wait_line() {  # FILE TEXT SECONDS [PID]: false at once if PID has ended without the line
		for _ in $(seq $(($3 * 4))); do
			grep -q "$2" "$1" 2>/dev/null && return 0
			[ -z "${4:-}" ] || kill -0 "$4" 2>/dev/null || { grep -q "$2" "$1" 2>/dev/null; return; }
			sleep 0.25
		done
		return 1
	}
	wait_active() {  # until netmapd is active with a MainPID other than $1
		for _ in $(seq 300); do
			[ "$(systemctl is-active netmapd)" = active ] && [ "$(prop MainPID)" != "$1" ] && [ -S /run/netmapd/control ] && return 0
			sleep 0.1
		done
		return 1
	}
	ring() {  # JSON PORT DIR -> "packets bytes drops"
		echo "$1" | jq -r --arg p "$2" --arg d "$3" \
			'.engine.ports[] | select(.name == $p) | .rings[] | select(.direction == $d and .index == 0 and (.host | not)) | "\(.packets) \(.bytes) \(.drops)"'
	}
	pipe_traffic() {  # NAME A2B B2A: as a netmap group member through the shim; checks netmapctl
		local log=$R/pipe-$1.log p j tot got want
		as_user "$TRAFFIC" -p "$1" -n "$2" -r "$3" >"$log" 2>&1 &
		p=$!
		if wait_line "$log" HOLD 120 "$p"; then
			tot=$(sed -n 's/^TOTAL pid=[0-9]* a2b_frames=\([0-9]*\) a2b_bytes=\([0-9]*\) b2a_frames=\([0-9]*\) b2a_bytes=\([0-9]*\)$/\1 \2 \3 \4/p' "$log")
			set -- "$1" $tot
			j=$("$CTL" status --json)
			got="tx $(ring "$j" "$1{1" tx) rx $(ring "$j" "$1{1" rx) / tx $(ring "$j" "$1}1" tx) rx $(ring "$j" "$1}1" rx)"
			want="tx $2 $3 0 rx $4 $5 0 / tx $4 $5 0 rx $2 $3 0"
			[ "$got" = "$want" ]
			result "pipe $1 through CUSE + shim as a member of group netmap: counters exact ($2 frames/$3 bytes, $4/$5 back)" \
				$([ "$got" = "$want" ] && echo 1 || echo 0) "got $got; want $want"
		else
			result "pipe $1 through CUSE + shim as a member of group netmap" 0 "$(tail -3 "$log" | tr '\n' ' ')"
		fi
		kill -USR1 "$p" 2>/dev/null
		wait "$p"
	}
	caps_expected=0000008000287001   # CHOWN NET_ADMIN NET_RAW IPC_LOCK SYS_PTRACE SYS_ADMIN BPF

	# --- started by systemd ---------------------------------------------------
	if wait_active 0; then
		result "netmapd.service active (Type=notify: READY=1 arrived)" 1
	else
		result "netmapd.service active" 0 "$(systemctl is-active netmapd); $(journalctl -u netmapd --no-pager 2>/dev/null | tail -5 | tr '\n' ' ')"
	fi
	pid=$(prop MainPID)
	st=$(grep -E '^(CapBnd|CapEff|CapAmb|NoNewPrivs|Seccomp):' "/proc/$pid/status" | tr -s '\t' ' ' | tr '\n' ' ')
	result "sandbox applied: $st" \
		$([[ "$st" == *"CapBnd: $caps_expected"* && "$st" == *"CapEff: $caps_expected"* && "$st" == *"NoNewPrivs: 1"* && "$st" == *"Seccomp: 2"* ]] && echo 1 || echo 0)
	result "group netmap created from the installed sysusers.d file ($(getent group netmap))" \
		$(getent group netmap >/dev/null && echo 1 || echo 0) "$(cat "$R/sysusers.log")"
	dev=$(stat -c '%F %G %a' /dev/netmap 2>&1)
	result "/dev/netmap from the installed config: $dev" $([ "$dev" = "character special file netmap 660" ] && echo 1 || echo 0)
	reg=$(stat -c '%G %a' /run/netmapd/region-1 2>&1)
	ctl=$(stat -c '%U %a' /run/netmapd/control 2>&1)
	result "RuntimeDirectory /run/netmapd: region-1 '$reg', control '$ctl'" \
		$([ "$reg" = "netmap 660" ] && [ "$ctl" = "root 600" ] && echo 1 || echo 0)
	udevadm=$(command -v udevadm || echo "$R/udev/bin/udevadm")
	ut=$("$udevadm" test /sys/class/cuse/netmap 2>&1)
	echo "$ut" >"$R/udevadm-test.log"
	result "udevadm test: the installed rule gives the CUSE device group netmap, mode 0660" \
		$(echo "$ut" | grep -q '60-netmapd.rules' && echo "$ut" | grep -Eq "GROUP.*netmap|GROUP [0-9]+" && echo "$ut" | grep -Eq "MODE.*0?660" && echo 1 || echo 0) \
		"$(echo "$ut" | grep -E '60-netmapd|GROUP|MODE' | head -4 | tr '\n' ' ')"
	s=$("$CTL" status 2>&1 | sed -n 2p)
	result "netmapctl status (root): $s" $([[ "$s" == "front end   cuse, device /dev/netmap (mode 0660, group netmap)" ]] && echo 1 || echo 0)
	s=$(setpriv --reuid=nobody --regid=nogroup --groups="$(getent group netmap | cut -d: -f3)" "$CTL" status 2>&1)
	result "netmapctl as a non-root member of group netmap: refused (control socket 0600)" \
		$([[ "$s" == *"permission denied"* ]] && echo 1 || echo 0) "$s"

	pipe_traffic vmA$$ 3000 700

	# --- interfaces (AF_PACKET, tc BPF) under the seccomp filter and capabilities
	for k in all default; do echo 1 >"/proc/sys/net/ipv6/conf/$k/disable_ipv6"; done
	if ip link add nmv0 type veth peer name nmv1 && ip link set nmv0 up && ip link set nmv1 up; then
		LD_PRELOAD=$SHIM "$TRAFFIC" -i nmv0 -R 300 -s 3 >"$R/if-rx.log" 2>&1 &
		rxp=$!
		wait_line "$R/if-rx.log" REGISTERED 60 "$rxp"
		LD_PRELOAD=$SHIM "$TRAFFIC" -i nmv1 -n 300 -s 3 >"$R/if-tx.log" 2>&1 &
		txp=$!
		if wait_line "$R/if-tx.log" HOLD 120 "$txp" && wait_line "$R/if-rx.log" HOLD 120 "$rxp"; then
			read -r tf tb < <(sed -n 's/^TOTAL pid=[0-9]* tx_frames=\([0-9]*\) tx_bytes=\([0-9]*\)$/\1 \2/p' "$R/if-tx.log")
			j=$("$CTL" status --json)
			got="nmv1 tx $(ring "$j" nmv1 tx); nmv0 rx $(ring "$j" nmv0 rx)"
			want="nmv1 tx $tf $tb 0; nmv0 rx $tf $tb 0"
			steal=$(tc filter show dev nmv0 ingress 2>/dev/null | grep -o 'netmapd[a-z_]*' | head -1)
			result "interfaces under the unit (AF_PACKET, tc program '$steal'): counters exact ($tf frames, $tb bytes)" \
				$([ "$got" = "$want" ] && [ -n "$steal" ] && echo 1 || echo 0) "got $got; want $want"
		else
			result "interfaces under the unit: traffic nmv1 -> nmv0" 0 \
				"$(tail -2 "$R/if-rx.log" "$R/if-tx.log" | tr '\n' ' '); $(journalctl -u netmapd --no-pager 2>/dev/null | tail -3 | tr '\n' ' ')"
		fi
		kill -USR1 "$rxp" "$txp" 2>/dev/null
		wait "$rxp" "$txp"
	else
		result "a veth pair in the VM" 0 "ip link failed"
	fi

	# --- Restart=on-failure after SIGKILL ------------------------------------------
	old=$pid
	systemctl kill -s KILL netmapd
	if wait_active "$old"; then
		pid=$(prop MainPID)
		cpid=$("$CTL" status --json | jq .daemon.pid)
		result "SIGKILL: systemd restarts netmapd (NRestarts $(prop NRestarts), new pid $pid, netmapctl sees pid $cpid)" \
			$([ "$cpid" = "$pid" ] && [ "$(prop NRestarts)" = 1 ] && echo 1 || echo 0)
		pipe_traffic vmB$$ 1000 1000
	else
		result "SIGKILL: systemd restarts netmapd" 0 "$(systemctl is-active netmapd)"
	fi

	# --- systemctl stop during traffic ----------------------------------------------
	as_user "$TRAFFIC" -p vmS$$ -n 100000000 -r 0 >"$R/stop-traffic.log" 2>&1 &
	tp=$!
	sleep 3
	LD_PRELOAD=$SHIM "$TRAFFIC" -i nmv0 -R 1000000 >"$R/if-hold.log" 2>&1 &   # keeps nmv0 registered
	hp=$!
	wait_line "$R/if-hold.log" REGISTERED 60 "$hp"
	systemctl stop netmapd
	gone=0
	for _ in $(seq 200); do kill -0 "$tp" 2>/dev/null || { gone=1; break; }; sleep 0.1; done
	kill -KILL "$tp" "$hp" 2>/dev/null
	left=""
	[ -e /dev/netmap ] && left="$left /dev/netmap"
	[ -e /run/netmapd ] && left="$left /run/netmapd"
	[ -n "$(tc filter show dev nmv0 ingress 2>/dev/null)" ] && left="$left tc-program-on-nmv0"
	result "systemctl stop during traffic: Result=$(prop Result), status $(prop ExecMainStatus), client ended, nothing left" \
		$([ "$(prop Result)" = success ] && [ "$(prop ExecMainStatus)" = 0 ] && [ $gone = 1 ] && [ -z "$left" ] && echo 1 || echo 0) \
		"client gone $gone; left:$left"

	# --- a bad configuration: exit 78, no restart loop --------------------------------
	cp /etc/netmapd.conf /run/netmapd.conf.good
	printf 'mode = 0660\ngroup = netmap\npool-bufers = 100\n' >/etc/netmapd.conf   # line 3: a typo
	systemctl reset-failed netmapd 2>/dev/null
	systemctl start netmapd 2>/dev/null
	sleep 5
	msg=$(journalctl -u netmapd --no-pager 2>/dev/null | grep -o '/etc/netmapd.conf:3: [^(]*' | tail -1)
	result "bad /etc/netmapd.conf: start fails with status $(prop ExecMainStatus), $(prop NRestarts) restarts, state $(systemctl is-active netmapd) ($msg)" \
		$([ "$(prop ExecMainStatus)" = 78 ] && [ "$(prop NRestarts)" = 0 ] && [ "$(systemctl is-active netmapd)" = failed ] && echo 1 || echo 0)
	cp /run/netmapd.conf.good /etc/netmapd.conf
	systemctl reset-failed netmapd 2>/dev/null
	systemctl start netmapd
	result "fixed configuration: netmapd starts again ($(systemctl is-active netmapd))" \
		$([ "$(systemctl is-active netmapd)" = active ] && echo 1 || echo 0)
	systemctl stop netmapd

	journalctl --no-pager -u netmapd >"$R/netmapd-journal.log" 2>&1
	systemctl --no-block exit 0
	exit 0
fi

# =============================================================================
# host
# =============================================================================
. "$root/Tests/lib/results.sh"
results_init unit-in-vm
[ "$(id -u)" = 0 ] || { echo "unit-in-vm: needs root"; expect 1; result "run as root" 0; finish; }
scratch=${SVC_SCRATCH:-$root/.build-svc}
R=$(mktemp -d /tmp/netmapd-unit-vm.XXXXXX)
chmod 0755 "$R"   # the guest runs programs from here as user nobody
fail() { expect 1; result "$1" 0; echo "unit-in-vm: logs in $R" >&2; finish; }
command -v jq >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends jq >/dev/null 2>&1

echo "unit-in-vm: make install DESTDIR=$R/root (release build, scratch $scratch)"
make -C "$root" --no-print-directory install DESTDIR="$R/root" INSTALL_SCRATCH="$scratch" >"$R/install.log" 2>&1 \
	|| { tail -20 "$R/install.log"; fail "make install DESTDIR=..."; }
gcc -O2 -Wall -Wextra -Werror -I "$root/Sources/ABI/CNetmapABI/include" -I "$root/Tests/device" \
	"$root/Tests/service/svc_traffic.c" -o "$R/svc_traffic" || fail "build svc_traffic"
cp "$0" "$R/unit-in-vm.sh"
# udevadm for checking the rule: Debian's udev package, unpacked for the VM
# only when the host has none (installing it here would start udevd).
if ! command -v udevadm >/dev/null; then
	(cd "$R" && apt-get download -q -o APT::Sandbox::User=root udev >/dev/null 2>&1 && dpkg -x udev_*.deb udev && rm -f udev_*.deb) \
		|| echo "unit-in-vm: could not fetch the udev package; the rule check will fail" >&2
fi

NETMAPD_VM_MODULES="${NETMAPD_VM_MODULES:-virtio_pci 9pnet_virtio 9p fuse cuse veth sch_ingress cls_bpf}" \
	"$root/Tests/vm/run-in-vm.sh" --timeout "${VM_TIMEOUT:-900}" --results "$R" --env "UNIT_VM_BACKEND=${UNIT_VM_BACKEND:-packet}" \
	-- /bin/bash "$R/unit-in-vm.sh" --guest >"$R/vm.out" 2>&1
vrc=$?
# The VM run (run-in-vm.sh's exit status is the guest's) must give all the
# checks' results: a guest that stopped half-way is a failure.
child_results "" $vrc "$R/vm.out" $UNIT_VM_RESULTS || tail -20 "$R/vm.out"
if [ "$results_failed" = 0 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$R"; else echo "unit-in-vm: logs in $R" >&2; fi
finish
