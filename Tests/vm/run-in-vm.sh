#!/usr/bin/env bash
# Run one command inside a small qemu VM that boots Debian's kernel (which has
# CUSE as a module), with the host's root file system mounted read-only over
# 9p. Facts behind every choice here: docs/test-vm.md.
#
#   Tests/vm/run-in-vm.sh [options] -- COMMAND [ARG...]
#
# The command runs as root in a chroot of the host root, in the caller's
# current directory, with /tmp, /run and /dev/shm as fresh tmpfs. Its output
# (stdout and stderr together) comes back over the serial console, and this
# script exits with its exit status; 124 on timeout, 125 when the VM or the
# harness failed before the command could report.
#
# Options:
#   -t, --timeout SECONDS  kill the VM after this long (default 300, env NETMAPD_VM_TIMEOUT)
#   -r, --results DIR      writable folder shared with the guest at the same path
#                          (created; kept). Default: a temporary folder, removed.
#                          The command finds it in $NETMAPD_VM_RESULTS.
#   -e, --env NAME=VALUE   set a variable for the command (repeatable)
#   -m, --memory MB        guest memory (default 2048)
#   -s, --smp N            guest CPUs (default 2)
#   -v, --verbose          show the whole console (kernel, init), not only the command's output
#       --prepare          only fetch the kernel and build the initramfs
#
# Environment: NETMAPD_VM_MODULES (modules to load, dependencies resolved
# through depmod; default "virtio_pci 9pnet_virtio 9p fuse cuse veth"),
# NETMAPD_VM_KERNEL_PKG (a linux-image package name instead of the one
# linux-image-amd64 depends on).
#
# Needs root (apt-get, qemu's 9p export of /). KVM is not used: it does not
# work on the build machines, so the VM runs under TCG (-accel tcg -cpu max).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$here/cache"
timeout_s="${NETMAPD_VM_TIMEOUT:-300}"
memory=2048
smp=2
verbose=0
prepare_only=0
results=""
keep_results=0
extra_env=()
modules="${NETMAPD_VM_MODULES:-virtio_pci 9pnet_virtio 9p fuse cuse veth}"

die() { echo "run-in-vm: $*" >&2; exit 125; }
note() { echo "run-in-vm: $*" >&2; }

while [ $# -gt 0 ]; do
	case "$1" in
	-t|--timeout) timeout_s="$2"; shift 2 ;;
	-r|--results) results="$2"; keep_results=1; shift 2 ;;
	-e|--env) [[ "$2" == [A-Za-z_]*=* ]] || die "--env wants NAME=VALUE, got '$2'"; extra_env+=("$2"); shift 2 ;;
	-m|--memory) memory="$2"; shift 2 ;;
	-s|--smp) smp="$2"; shift 2 ;;
	-v|--verbose) verbose=1; shift ;;
	--prepare) prepare_only=1; shift ;;
	--) shift; break ;;
	-h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option '$1' (the command goes after --)" ;;
	esac
done
[ $# -gt 0 ] || [ "$prepare_only" = 1 ] || die "no command; usage: $0 [options] -- COMMAND [ARG...]"
[ "$(id -u)" = 0 ] || die "must run as root"

# ---- host tools --------------------------------------------------------------
apt_updated=0
apt_update() {
	if [ "$apt_updated" = 0 ]; then
		note "apt-get update"
		apt-get update -qq >&2 || die "apt-get update failed"
		apt_updated=1
	fi
}
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && file_is_static=$(LC_ALL=C ldd /bin/busybox 2>&1 | grep -c 'not a dynamic' || true) || file_is_static=0
[ "$file_is_static" = 1 ] || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v depmod >/dev/null || need+=(kmod)
if [ ${#need[@]} -gt 0 ]; then
	note "installing ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 \
		|| { apt_update; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; } \
		|| die "cannot install ${need[*]}"
fi

# ---- kernel and initramfs (cached under Tests/vm/cache, gitignored) ----------
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9   # one preparer at a time; released when this script exits

kernel_package() {
	if [ -n "${NETMAPD_VM_KERNEL_PKG:-}" ]; then echo "$NETMAPD_VM_KERNEL_PKG"; return; fi
	local p
	p=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	if [ -z "$p" ]; then
		apt_update
		p=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	fi
	echo "$p"
}
pkg="$(kernel_package)"
if [ -z "$pkg" ]; then
	# No package lists (offline): fall back to a kernel fetched before.
	pkg=$(ls -1 "$cache"/kernel 2>/dev/null | sort -V | tail -n 1 || true)
	[ -n "$pkg" ] || die "cannot tell which linux-image package to fetch (apt-cache depends linux-image-amd64)"
	note "package lists unavailable; using cached $pkg"
fi
kroot="$cache/kernel/$pkg"
if [ ! -f "$kroot/.complete" ]; then
	note "fetching $pkg"
	rm -rf "$kroot" "$cache"/*.deb
	(cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) \
		|| { apt_update; (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2); } \
		|| die "apt-get download $pkg failed"
	deb=$(ls -1 "$cache/${pkg}"_*.deb | head -n 1)
	mkdir -p "$kroot"
	dpkg -x "$deb" "$kroot"
	rm -f "$deb"
	# Keep only the newest kernel.
	for old in "$cache"/kernel/*; do [ "$old" = "$kroot" ] || rm -rf "$old"; done
	touch "$kroot/.complete"
fi
kver=$(ls -1 "$kroot/lib/modules" | head -n 1)
vmlinuz="$kroot/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || die "no $vmlinuz"
moddir="$kroot/lib/modules/$kver"
[ -f "$moddir/modules.dep" ] || depmod -b "$kroot" "$kver" || die "depmod failed"

# Module load order: each module after everything it depends on (modules.dep).
declare -A modpath=() loaded=()
while IFS=: read -r path deps; do
	name=${path##*/}; name=${name%.ko*}
	modpath[$name]="$path"
	modpath["${name//-/_}"]="$path"
done < "$moddir/modules.dep"
order=()
add_module() {  # add_module RELATIVE_PATH
	local path="$1" deps d
	[ -z "${loaded[$path]:-}" ] || return 0
	loaded[$path]=1
	deps=$(grep -m1 "^$path:" "$moddir/modules.dep" | cut -d: -f2)
	for d in $deps; do add_module "$d"; done
	order+=("$path")
}
for m in $modules; do
	[ -n "${modpath[$m]:-}" ] || die "module $m is not in $kver"
	add_module "${modpath[$m]}"
done

initrd_key=$(printf '%s\n' "$kver" "${order[@]}" | cat - "$here/guest-init.sh" /bin/busybox | sha256sum | cut -c1-16)
initrd="$cache/initramfs-$kver-$initrd_key.cpio.gz"
if [ ! -f "$initrd" ]; then
	note "building initramfs for $kver (${order[*]##*/})"
	stage=$(mktemp -d)
	mkdir -p "$stage/bin" "$stage/lib/modules/$kver"
	cp /bin/busybox "$stage/bin/busybox"
	install -m 0755 "$here/guest-init.sh" "$stage/init"
	for p in "${order[@]}"; do
		mkdir -p "$stage/lib/modules/$kver/$(dirname "$p")"
		cp "$moddir/$p" "$stage/lib/modules/$kver/$p"
	done
	printf '%s\n' "${order[@]}" > "$stage/modules.load"
	rm -f "$cache"/initramfs-*.cpio.gz
	(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
	rm -rf "$stage"
fi
flock -u 9
[ "$prepare_only" = 0 ] || { note "ready: $vmlinuz, $initrd"; exit 0; }

# ---- this run's shared folder ------------------------------------------------
if [ -z "$results" ]; then
	results=$(mktemp -d /tmp/netmapd-vm.XXXXXX)
else
	mkdir -p "$results"
	results=$(cd "$results" && pwd -P)
fi
case "$results" in *[[:space:]\'\"\\\$\`]*) die "results path must not contain spaces or quotes: $results" ;; esac
rm -rf "$results/.vm"
mkdir -p "$results/.vm"
cwd=$(pwd -P)
{
	printf 'VM_RESULTS=%s\n' "$results"
	printf 'VM_CWD=%q\n' "$cwd"
} > "$results/.vm/env"
{
	for kv in "${extra_env[@]}"; do printf 'export %q\n' "$kv"; done
	printf 'cd %q || exit 125\n' "$cwd"
	printf 'exec'; printf ' %q' "$@"; printf '\n'
} > "$results/.vm/cmd.sh"

cleanup() {
	[ "$keep_results" = 1 ] || rm -rf "$results"
}
trap cleanup EXIT

# ---- boot --------------------------------------------------------------------
console_log="$results/.vm/console.log"
append="console=ttyS0 quiet loglevel=1 panic=-1 mitigations=off"
# Print the command's part of the console (everything with -v), strip the
# tty's carriage returns, and time the boot. A shell loop, not awk: mawk
# buffers its input and would hold the stream back.
filter_console() {
	local line on=0 now
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		case "$line" in
		@@NETMAPD-VM-BEGIN@@*)
			on=1
			now=$(date +%s.%N)
			note "$(awk -v a="$start" -v b="$now" 'BEGIN { printf "boot to command %.1f s", b - a }')"
			[ "$verbose" = 1 ] || continue ;;
		*@@NETMAPD-VM-END@@*)
			# Output without a final newline shares the marker's line.
			if [ "$verbose" = 0 ] && [ "$on" = 1 ] && [ -n "${line%%@@NETMAPD-VM-END@@*}" ]; then
				printf '%s\n' "${line%%@@NETMAPD-VM-END@@*}"
			fi
			on=0
			[ "$verbose" = 1 ] || continue ;;
		*@@NETMAPD-VM-INIT-FAILED@@*)
			echo "$line" >&2; continue ;;
		esac
		if [ "$verbose" = 1 ] || [ "$on" = 1 ]; then printf '%s\n' "$line"; fi
	done
}
start=$(date +%s.%N)
set +e
timeout -k 5 "$timeout_s" qemu-system-x86_64 \
	-accel tcg -cpu max -smp "$smp" -m "$memory" \
	-nodefaults -no-user-config -display none -no-reboot \
	-serial stdio -monitor none \
	-kernel "$vmlinuz" -initrd "$initrd" -append "$append" \
	-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$results,mount_tag=results,security_model=none,multidevs=remap" \
	</dev/null 2>&1 \
| tee "$console_log" \
| filter_console
qemu_rc=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

if [ -f "$results/.vm/rc" ]; then
	rc=$(cat "$results/.vm/rc")
	note "command exited $rc; VM total ${elapsed} s"
	exit "$rc"
fi
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
	note "timed out after ${timeout_s} s; last console lines:"
	tail -n 20 "$console_log" >&2
	exit 124
fi
note "the VM ended (qemu status $qemu_rc) without the command's status; last console lines:"
tail -n 30 "$console_log" >&2
exit 125
