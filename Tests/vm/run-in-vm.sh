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
#   -k, --kernel NAME      which Debian kernel to boot (env NETMAPD_VM_KERNEL):
#                          6.1 (default: what Debian 12's linux-image-amd64
#                          depends on), 6.1-cloud, 6.12 and 6.12-cloud (the
#                          same meta-packages from bookworm-backports), or a
#                          linux-image-* package name of the configured sources
#   -v, --verbose          show the whole console (kernel, init), not only the command's output
#       --prepare          only fetch the kernel and build the initramfs
#       --print-kernel     print the selected kernel's release (uname -r) and exit
#
# Environment: NETMAPD_VM_MODULES (modules to load, dependencies resolved
# through depmod, built-in ones skipped; default: virtio, the host file
# system transport, fuse, veth, and what systemd/modules-load.d/netmapd.conf
# lists (cuse, sch_ingress for clsact, cls_bpf), as an installed system loads),
# NETMAPD_VM_KERNEL_PKG (a linux-image package name, as --kernel PACKAGE).
#
# The host root reaches the guest over 9p; a kernel without 9p (the cloud
# flavour) gets it over virtiofs instead (qemu's virtiofsd, shared memory).
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
kernel="${NETMAPD_VM_KERNEL:-6.1}"
print_kernel=0

die() { echo "run-in-vm: $*" >&2; exit 125; }
note() { echo "run-in-vm: $*" >&2; }

while [ $# -gt 0 ]; do
	case "$1" in
	-t|--timeout) timeout_s="$2"; shift 2 ;;
	-r|--results) results="$2"; keep_results=1; shift 2 ;;
	-e|--env) [[ "$2" == [A-Za-z_]*=* ]] || die "--env wants NAME=VALUE, got '$2'"; extra_env+=("$2"); shift 2 ;;
	-m|--memory) memory="$2"; shift 2 ;;
	-s|--smp) smp="$2"; shift 2 ;;
	-k|--kernel) kernel="$2"; shift 2 ;;
	-v|--verbose) verbose=1; shift ;;
	--prepare) prepare_only=1; shift ;;
	--print-kernel) print_kernel=1; prepare_only=1; shift ;;
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

# Packages of another suite (bookworm-backports) come through apt with a
# private source list and state under cache/apt: the system's sources and
# package lists are left alone.
bpo_apt() {  # bpo_apt COMMAND ARGS...: apt-get/apt-cache on bookworm-backports only
	local tool=$1 a
	shift
	a="$cache/apt"
	mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
	[ -f "$a/sources.list" ] || echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main" >"$a/sources.list"
	"$tool" -q -o Dir::Etc::SourceList="$a/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$a/lists" -o Dir::Cache="$a/cache" -o APT::Sandbox::User=root "$@"
}
meta_depends() {  # meta_depends APT-CACHE-RUNNER META: the versioned package META depends on
	"$@" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
apt_src=system
case "$kernel" in 6.12|6.12-cloud) [ -n "${NETMAPD_VM_KERNEL_PKG:-}" ] || apt_src=bpo ;; esac
kernel_package() {
	local meta p
	if [ -n "${NETMAPD_VM_KERNEL_PKG:-}" ]; then echo "$NETMAPD_VM_KERNEL_PKG"; return; fi
	case "$kernel" in
	6.1|default) meta=linux-image-amd64 ;;
	6.1-cloud) meta=linux-image-cloud-amd64 ;;
	6.12|6.12-cloud)
		meta=linux-image-amd64
		[ "$kernel" = 6.12 ] || meta=linux-image-cloud-amd64
		p=$(meta_depends bpo_apt apt-cache depends "$meta")
		if [ -z "$p" ]; then
			bpo_apt apt-get update >&2 || true
			p=$(meta_depends bpo_apt apt-cache depends "$meta")
		fi
		echo "$p"
		return ;;
	linux-image-*) echo "$kernel"; return ;;
	*) die "unknown kernel '$kernel' (6.1, 6.1-cloud, 6.12, 6.12-cloud or a linux-image-* package)" ;;
	esac
	p=$(meta_depends apt-cache depends "$meta")
	if [ -z "$p" ]; then
		apt_update
		p=$(meta_depends apt-cache depends "$meta")
	fi
	echo "$p"
}
pkg="$(kernel_package)"
if [ -z "$pkg" ]; then
	# No package lists (offline): fall back to a kernel of this name fetched before.
	pkg=$(cat "$cache/kernel/.last-$kernel" 2>/dev/null || true)
	[ -n "$pkg" ] && [ -f "$cache/kernel/$pkg/.complete" ] || die "cannot tell which linux-image package to fetch for kernel '$kernel'"
	note "package lists unavailable; using cached $pkg"
fi
kroot="$cache/kernel/$pkg"
if [ ! -f "$kroot/.complete" ]; then
	note "fetching $pkg"
	rm -rf "$kroot" "$cache"/*.deb
	if [ "$apt_src" = bpo ]; then
		(cd "$cache" && bpo_apt apt-get download "$pkg" >&2) \
			|| { bpo_apt apt-get update >&2; (cd "$cache" && bpo_apt apt-get download "$pkg" >&2); } \
			|| die "apt-get download $pkg (bookworm-backports) failed"
	else
		(cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) \
			|| { apt_update; (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2); } \
			|| die "apt-get download $pkg failed"
	fi
	deb=$(ls -1 "$cache/${pkg}"_*.deb | head -n 1)
	mkdir -p "$kroot"
	dpkg -x "$deb" "$kroot"
	rm -f "$deb"
	# Keep only the newest kernel of this name.
	old=$(cat "$cache/kernel/.last-$kernel" 2>/dev/null || true)
	[ -z "$old" ] || [ "$old" = "$pkg" ] || rm -rf "$cache/kernel/$old"
	touch "$kroot/.complete"
fi
echo "$pkg" >"$cache/kernel/.last-$kernel"
kver=$(ls -1 "$kroot/lib/modules" | head -n 1)
vmlinuz="$kroot/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || die "no $vmlinuz"
moddir="$kroot/lib/modules/$kver"
[ -f "$moddir/modules.dep" ] || depmod -b "$kroot" "$kver" || die "depmod failed"
kconfig="$kroot/boot/config-$kver"
if [ "$print_kernel" = 1 ]; then echo "$kver"; exit 0; fi
# The host root's transport: 9p where the kernel has it, else virtiofs.
if grep -q '^CONFIG_9P_FS=[ym]' "$kconfig" && grep -q '^CONFIG_NET_9P_VIRTIO=[ym]' "$kconfig"; then
	transport=9p
	fsmods="virtio_pci 9pnet_virtio 9p"
elif grep -q '^CONFIG_VIRTIO_FS=[ym]' "$kconfig"; then
	transport=virtiofs
	fsmods="virtio_pci virtiofs"
	[ -x /usr/lib/qemu/virtiofsd ] || die "$kver has no 9p: needs /usr/lib/qemu/virtiofsd (qemu-system-common)"
else
	die "$kver has neither 9p nor virtiofs: cannot reach the host root"
fi
# What a system with netmapd installed loads at boot: its modules-load.d file.
shipped=$(sed -e 's/#.*//' "$here/../../systemd/modules-load.d/netmapd.conf" | xargs)
modules="${NETMAPD_VM_MODULES:-$fsmods fuse veth $shipped}"

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
builtin_mod() { grep -qE "/${1//_/[_-]}\.ko(\.[a-z]+)?\$" "$moddir/modules.builtin" 2>/dev/null; }
for m in $modules; do
	if [ -z "${modpath[$m]:-}" ]; then
		builtin_mod "$m" && continue
		die "module $m is not in $kver"
	fi
	add_module "${modpath[$m]}"
done

initrd_key=$(printf '%s\n' "$kver" "$transport" "${order[@]}" | cat - "$here/guest-init.sh" /bin/busybox | sha256sum | cut -c1-16)
initrd="$cache/initramfs-$kver-$initrd_key.cpio.gz"
if [ ! -f "$initrd" ]; then
	note "building initramfs for $kver (${order[*]##*/})"
	stage=$(mktemp -d)
	mkdir -p "$stage/bin" "$stage/lib/modules/$kver"
	cp /bin/busybox "$stage/bin/busybox"
	install -m 0755 "$here/guest-init.sh" "$stage/init"
	# Modules go in uncompressed (busybox insmod reads them as they are).
	for p in "${order[@]}"; do
		mkdir -p "$stage/lib/modules/$kver/$(dirname "$p")"
		case "$p" in
		*.ko.xz) xz -dc "$moddir/$p" >"$stage/lib/modules/$kver/${p%.xz}" ;;
		*.ko.zst) zstd -qdc "$moddir/$p" >"$stage/lib/modules/$kver/${p%.zst}" ;;
		*.ko.gz) gzip -dc "$moddir/$p" >"$stage/lib/modules/$kver/${p%.gz}" ;;
		*) cp "$moddir/$p" "$stage/lib/modules/$kver/$p" ;;
		esac
	done
	printf '%s\n' "${order[@]}" | sed -E 's/\.ko\.(xz|zst|gz)$/.ko/' > "$stage/modules.load"
	echo "$transport" > "$stage/transport"
	rm -f "$cache"/initramfs-"$kver"-*.cpio.gz
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
vfspids=()
vfsdir=""
cleanup() {
	[ ${#vfspids[@]} = 0 ] || { kill "${vfspids[@]}" 2>/dev/null || true; wait "${vfspids[@]}" 2>/dev/null || true; }
	[ -z "$vfsdir" ] || rm -rf "$vfsdir"
	[ "$keep_results" = 1 ] || rm -rf "$results"
}
# Sets fsargs: qemu's exports of the host root and the results folder.
# virtiofs: one virtiofsd per export (each serves one boot), guest memory
# shared with them.
exports() {
	if [ "$transport" = 9p ]; then
		fsargs=(-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap
			-virtfs "local,path=$results,mount_tag=results,security_model=none,multidevs=remap")
		return
	fi
	[ ${#vfspids[@]} = 0 ] || { kill "${vfspids[@]}" 2>/dev/null || true; wait "${vfspids[@]}" 2>/dev/null || true; }
	[ -z "$vfsdir" ] || rm -rf "$vfsdir"
	vfsdir=$(mktemp -d /tmp/netmapd-vm-vfs.XXXXXX)
	vfspids=()
	local tag src
	for tag in host results; do
		src=/
		[ "$tag" = host ] || src=$results
		/usr/lib/qemu/virtiofsd --socket-path="$vfsdir/$tag.sock" -o source="$src" -o cache=auto \
			-o sandbox=chroot -o log_level=err >"$vfsdir/$tag.log" 2>&1 &
		vfspids+=($!)
	done
	for tag in host results; do
		for _ in $(seq 1 50); do [ -S "$vfsdir/$tag.sock" ] && break; sleep 0.1; done
		[ -S "$vfsdir/$tag.sock" ] || die "virtiofsd for $tag did not start: $(cat "$vfsdir/$tag.log")"
	done
	fsargs=(-object "memory-backend-memfd,id=mem,size=${memory}M,share=on" -machine memory-backend=mem
		-chardev "socket,id=vfs0,path=$vfsdir/host.sock" -device vhost-user-fs-pci,chardev=vfs0,tag=host
		-chardev "socket,id=vfs1,path=$vfsdir/results.sock" -device vhost-user-fs-pci,chardev=vfs1,tag=results)
}
# A kernel that panics before the command started (it happens under
# emulation, rarely, while devices probe) is booted again, up to 3 times.
for attempt in 1 2 3; do
	exports
	start=$(date +%s.%N)
	set +e
	timeout -k 5 "$timeout_s" qemu-system-x86_64 \
		-accel tcg -cpu max -smp "$smp" -m "$memory" \
		-nodefaults -no-user-config -display none -no-reboot \
		-serial stdio -monitor none \
		-kernel "$vmlinuz" -initrd "$initrd" -append "$append" \
		"${fsargs[@]}" \
		</dev/null 2>&1 \
	| tee "$console_log" \
	| filter_console
	qemu_rc=${PIPESTATUS[0]}
	set -e
	end=$(date +%s.%N)
	if [ ! -f "$results/.vm/rc" ] && ! grep -q '@@NETMAPD-VM-BEGIN@@' "$console_log" && grep -q 'Kernel panic' "$console_log"; then
		note "the kernel panicked while booting (attempt $attempt):"
		grep -m1 -B2 'Kernel panic' "$console_log" >&2 || true
		continue
	fi
	break
done
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
