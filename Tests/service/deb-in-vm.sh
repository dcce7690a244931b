#!/usr/bin/env bash
# deb-in-vm.sh: the Debian package (make deb) installed, used and purged
# under a real systemd, in the test VM (Tests/vm/run-in-vm.sh: Debian's
# kernel with CUSE, the host root read-only over 9p).
#
# The guest lays a writable overlay (tmpfs) over the host root, so dpkg can
# install into a Debian 12 system that has the package's dependencies, and
# boots /lib/systemd/systemd as PID 1 of a new PID and mount namespace
# chrooted there (container mode, as in unit-in-vm.sh). A oneshot service
# then, with systemd running as on any installed machine:
#   - dpkg -i build/netmapd_*.deb: the maintainer scripts create group
#     netmap, enable netmapd.service and start it (deb-systemd-helper,
#     deb-systemd-invoke); /etc/netmapd.conf is a conffile;
#   - the service is active (Type=notify), /dev/netmap is the CUSE device
#     with group netmap and mode 0660, netmapctl status answers;
#   - a netmap program built on the host against the package's own headers
#     (pkg-config netmapd from the .deb: Tests/headers/nm_headers.c) runs as
#     a member of group netmap with the package's preload shim: nm_open,
#     pipes, 20000 frames through nm_inject / nm_dispatch / nm_nextpkt;
#   - dpkg --purge netmapd: the service is stopped and gone, no file of the
#     package is left, nor /etc/netmapd.conf, /run/netmapd, /dev/netmap, the
#     enablement links or dpkg's records of it.
# After systemd has exited, the guest lists everything the whole run changed
# in the root (the overlay's upper layer): nothing named netmap* may remain.
# Group netmap stays, as Debian packages leave their system groups.
#
#   Tests/service/deb-in-vm.sh [DEB]     (default: the newest build/netmapd_*.deb)
#
# Needs root and qemu (installed by the VM harness); about 6 minutes under
# TCG. Ends with "deb-in-vm: N passed, M failed" (Tests/lib/results.sh).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# The checks under systemd give exactly this many results, the guest's
# overlay check one more.
DEB_VM_RESULTS=15

# =============================================================================
# inside the VM, as PID 1's command: a writable root, systemd, the verdict
# =============================================================================
if [ "${1:-}" = "--guest" ]; then
	R=$NETMAPD_VM_RESULTS
	N=/run/debroot
	: >"$R/results.txt"
	mkdir -p /run/ovl/upper /run/ovl/work "$N"
	if ! mount -t overlay overlay -o "lowerdir=/,upperdir=/run/ovl/upper,workdir=/run/ovl/work" "$N"; then
		echo "not ok - a writable overlay over the root" >>"$R/results.txt"
		cat "$R/results.txt"
		exit 1
	fi
	mount --rbind /dev "$N/dev"
	mount --rbind /sys "$N/sys"
	mount -t tmpfs tmpfs "$N/run"
	mount -t tmpfs tmpfs "$N/tmp"
	mkdir -p "$N$R" && mount --bind "$R" "$N$R"
	# man-db's trigger would rebuild every manual page index under emulation.
	rm -f "$N/var/lib/man-db/auto-update"
	# A container image's "start no services" policy (the build machines have
	# one) is not a Debian system's: an installed system has none.
	rm -f "$N/usr/sbin/policy-rc.d"
	mkdir -p "$N/run/systemd/system"
	cat >"$N/run/systemd/system/deb-check.service" <<-EOF
	[Unit]
	Description=netmapd package checks
	[Service]
	Type=oneshot
	Environment=NETMAPD_VM_RESULTS=$R
	ExecStart=/bin/bash $R/deb-in-vm.sh --checks
	StandardOutput=append:$R/check.log
	StandardError=append:$R/check.log
	EOF
	cat >"$N/run/systemd/system/deb-test.target" <<-EOF
	[Unit]
	Description=netmapd package test
	Wants=deb-check.service
	EOF
	echo "guest: starting systemd in the overlay root (kernel $(uname -r))"
	unshare --pid --fork --mount --propagation private sh -c '
		mount -t proc proc "$0/proc" && exec chroot "$0" env container=netmapd-vm \
			/lib/systemd/systemd --unit=deb-test.target --log-target=console --show-status=no' "$N" \
		>"$R/systemd.log" 2>&1
	echo "guest: systemd exited $?"
	# Everything the run changed in the root, the package's files included
	# while it was installed: after the purge nothing named netmap* is left.
	(cd /run/ovl/upper && find . -mindepth 1 | sort) >"$R/upper.txt"
	left=$(grep -i 'netmap' "$R/upper.txt" | tr '\n' ' ')
	if [ -z "$left" ] && [ -s "$R/upper.txt" ]; then
		echo "ok - after the purge nothing named netmap* is left anywhere in the root ($(wc -l <"$R/upper.txt") paths changed by the run, none of them netmapd's)" >>"$R/results.txt"
	else
		echo "not ok - after the purge nothing named netmap* is left anywhere in the root: $left" >>"$R/results.txt"
	fi
	cat "$R/results.txt"
	echo "guest: $(grep -c '^ok - ' "$R/results.txt") passed, $(grep -c '^not ok - ' "$R/results.txt") failed"
	exit 0
fi

# =============================================================================
# inside the VM, as a oneshot service under that systemd: the checks
# =============================================================================
if [ "${1:-}" = "--checks" ]; then
	R=$NETMAPD_VM_RESULTS
	out=$R/results.txt
	deb=$(cat "$R/deb.name")
	result() { if [ "$2" = 1 ]; then echo "ok - $1" >>"$out"; else echo "not ok - $1${3:+: $3}" >>"$out"; fi; }
	ok_if() { "$@" >/dev/null 2>&1 && echo 1 || echo 0; }
	wait_active() {   # 120 s at most (each systemctl call is slow under emulation)
		local end=$((SECONDS + 120))
		while [ $SECONDS -lt $end ]; do
			[ "$(systemctl is-active netmapd)" = active ] && [ -S /run/netmapd/control ] && return 0
			sleep 0.5
		done
		return 1
	}
	gid=$(getent group netmap | cut -d: -f3)
	result "before: no group netmap, no netmapd.service ($(systemctl is-enabled netmapd 2>&1))" \
		$([ -z "$gid" ] && ! systemctl cat netmapd >/dev/null 2>&1 && echo 1 || echo 0)

	# --- install -------------------------------------------------------------
	dpkg -i "$R/$deb" >"$R/dpkg-i.log" 2>&1
	rc=$?
	result "dpkg -i $deb (exit $rc)" $([ $rc = 0 ] && echo 1 || echo 0) "$(tail -5 "$R/dpkg-i.log" | tr '\n' ' ')"
	st=$(dpkg-query -W -f='${Status} ${Version}' netmapd 2>&1)
	conf=$(dpkg-query -W -f='${Conffiles}' netmapd 2>&1 | awk '{print $1}' | tr '\n' ' ')
	result "dpkg: $st; conffiles: $conf" $([[ "$st" == "install ok installed"* && "$conf" == "/etc/netmapd.conf " ]] && echo 1 || echo 0)
	gid=$(getent group netmap | cut -d: -f3)
	result "postinst created system group netmap (gid ${gid:-none})" $([ -n "$gid" ] && [ "$gid" -lt 1000 ] && echo 1 || echo 0)
	en=$(systemctl is-enabled netmapd 2>&1)
	result "postinst enabled netmapd.service ($en, $(ls /etc/systemd/system/multi-user.target.wants/ 2>/dev/null | grep netmapd))" \
		$([ "$en" = enabled ] && [ -L /etc/systemd/system/multi-user.target.wants/netmapd.service ] && echo 1 || echo 0)
	if wait_active; then
		result "postinst started netmapd.service: active, MainPID $(systemctl show -P MainPID netmapd), ExecStart $(systemctl show -P ExecStart netmapd | grep -o 'path=[^ ;]*')" 1
	else
		result "postinst started netmapd.service" 0 "$(systemctl is-active netmapd); $(journalctl -u netmapd --no-pager 2>/dev/null | tail -5 | tr '\n' ' ')"
	fi
	dev=$(stat -c '%F %G %a' /dev/netmap 2>&1)
	result "/dev/netmap: $dev" $([ "$dev" = "character special file netmap 660" ] && echo 1 || echo 0)
	s=$(netmapctl status 2>&1 | sed -n 2p)
	result "netmapctl (from /usr/bin) status: $s" $([[ "$s" == "front end   cuse, device /dev/netmap"* ]] && echo 1 || echo 0)

	# --- a netmap program, built against the package's headers ---------------
	setpriv --reuid=nobody --regid=nogroup --groups="$gid" env LD_PRELOAD=/usr/lib/netmapd/libnetmapd-shim.so \
		"$R/nm_headers" /dev/netmap 20000 >"$R/nm_headers.log" 2>&1
	rc=$?
	summary=$(grep -E '^headers: [0-9]+ passed' "$R/nm_headers.log")
	result "nm_headers (built with pkg-config netmapd from the package) as a member of group netmap, with the package's shim: $summary" \
		$([ $rc = 0 ] && [ "$summary" = "headers: 15 passed, 0 failed" ] && echo 1 || echo 0) \
		"$(grep '^not ok' "$R/nm_headers.log" | head -3 | tr '\n' ' ')"

	# --- purge ---------------------------------------------------------------
	files=$(dpkg-query -L netmapd 2>/dev/null)
	dpkg --purge netmapd >"$R/dpkg-purge.log" 2>&1
	rc=$?
	result "dpkg --purge netmapd (exit $rc)" $([ $rc = 0 ] && echo 1 || echo 0) "$(tail -5 "$R/dpkg-purge.log" | tr '\n' ' ')"
	result "the service is stopped and unknown to systemd ($(systemctl is-active netmapd 2>&1); $(systemctl is-enabled netmapd 2>&1))" \
		$([ "$(systemctl is-active netmapd 2>&1)" != active ] && ! systemctl cat netmapd >/dev/null 2>&1 && echo 1 || echo 0)
	left=""
	nfiles=0
	for f in $files; do
		[ -d "$f" ] && continue   # shared directories (and /lib, a link to one) stay
		nfiles=$((nfiles + 1))
		[ -e "$f" ] || [ -L "$f" ] && left="$left $f"
	done
	for d in /usr/lib/netmapd /usr/share/doc/netmapd; do [ -e "$d" ] && left="$left $d"; done
	result "none of the package's $nfiles files is left" $([ -z "$left" ] && [ "$nfiles" -gt 10 ] && echo 1 || echo 0) "left:$left"
	left=""
	for f in /etc/netmapd.conf /run/netmapd /dev/netmap /etc/systemd/system/multi-user.target.wants/netmapd.service \
		/var/lib/systemd/deb-systemd-helper-enabled/netmapd.service.dsh-also \
		/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/netmapd.service; do
		[ -e "$f" ] || [ -L "$f" ] && left="$left $f"
	done
	ls /var/lib/dpkg/info/netmapd.* >/dev/null 2>&1 && left="$left /var/lib/dpkg/info/netmapd.*"
	result "purge removed the conffile, the run directory, the device, the enablement and dpkg's records" \
		$([ -z "$left" ] && echo 1 || echo 0) "left:$left"
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' netmapd 2>&1)
	result "dpkg no longer knows netmapd ($st)" $([[ "$st" == "un "* || "$st" == *"no packages found"* ]] && echo 1 || echo 0)
	result "group netmap is kept (Debian leaves system groups: files may still belong to it)" $(ok_if getent group netmap)

	journalctl --no-pager >"$R/journal.log" 2>&1
	systemctl --no-block exit 0
	exit 0
fi

# =============================================================================
# host
# =============================================================================
. "$root/Tests/lib/results.sh"
results_init deb-in-vm
[ "$(id -u)" = 0 ] || { echo "deb-in-vm: needs root"; expect 1; result "run as root" 0; finish; }
deb=${1:-$(ls -t "$root"/build/netmapd_*.deb 2>/dev/null | head -1)}
[ -f "$deb" ] || { expect 1; result "a package to test (make deb)" 0; finish; }
R=$(mktemp -d /tmp/netmapd-deb-vm.XXXXXX)
chmod 0755 "$R"   # the guest runs a program from here as user nobody
fail() { expect 1; result "$1" 0; echo "deb-in-vm: logs in $R" >&2; finish; }

cp "$deb" "$R/" && basename "$deb" >"$R/deb.name"
cp "$0" "$R/deb-in-vm.sh"
# The test program, from the package's own headers and pkg-config file.
dpkg-deb -x "$deb" "$R/x" || fail "dpkg-deb -x $deb"
cflags=$(PKG_CONFIG_SYSROOT_DIR="$R/x" PKG_CONFIG_LIBDIR="$R/x/usr/share/pkgconfig" pkg-config --cflags netmapd) ||
	fail "pkg-config netmapd from the package"
gcc -std=c11 -O2 -Wall -Wextra -Werror $cflags -o "$R/nm_headers" "$root/Tests/headers/nm_headers.c" ||
	fail "build nm_headers.c against the package's headers ($cflags)"
rm -rf "$R/x"
echo "deb-in-vm: $(basename "$deb") into the VM (logs in $R)"

NETMAPD_VM_MODULES="${NETMAPD_VM_MODULES:-virtio_pci 9pnet_virtio 9p fuse cuse overlay}" \
	"$root/Tests/vm/run-in-vm.sh" --timeout "${VM_TIMEOUT:-900}" --results "$R" \
	-- /bin/bash "$R/deb-in-vm.sh" --guest >"$R/vm.out" 2>&1
vrc=$?
child_results "" $vrc "$R/vm.out" $((DEB_VM_RESULTS + 1)) || tail -30 "$R/vm.out"
if [ "$results_failed" = 0 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$R"; else echo "deb-in-vm: logs in $R" >&2; fi
finish
