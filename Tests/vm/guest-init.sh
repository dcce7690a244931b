#!/bin/busybox sh
# /init of the test VM's initramfs (built by Tests/vm/run-in-vm.sh).
# Loads the modules listed in /modules.load, mounts the host root read-only
# (9p tag "host") and the run's writable results folder (9p tag "results"),
# chroots into the host root and runs the command the host left in
# results/.vm/cmd.sh. The command's exit status goes to results/.vm/rc and
# into the end marker on the console; then the VM powers off.
/bin/busybox mkdir -p /proc /sys /dev /mnt /results /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() {
	echo "@@NETMAPD-VM-INIT-FAILED@@ $*"
	poweroff -f
	sleep 5
	exit 1
}

# What modprobe would load on a real system: the list, in dependency order.
for m in $(cat /modules.load); do
	insmod "/lib/modules/$(uname -r)/$m" || echo "guest-init: insmod $m failed"
done

# The transport run-in-vm.sh chose for this kernel: 9p, or virtiofs where
# the kernel has no 9p (the cloud flavour).
if [ "$(cat /transport 2>/dev/null)" = virtiofs ]; then
	mount -t virtiofs -o ro host /mnt || fail "cannot mount the host root (virtiofs)"
	mount -t virtiofs results /results || fail "cannot mount the results folder (virtiofs)"
else
	p9='trans=virtio,version=9p2000.L,msize=512000'
	mount -t 9p -o "ro,$p9,cache=loose" host /mnt || fail "cannot mount the host root"
	mount -t 9p -o "$p9" results /results || fail "cannot mount the results folder"
fi
. /results/.vm/env || fail "no results/.vm/env"

mount -t proc proc /mnt/proc
mount -t sysfs sysfs /mnt/sys
mount -t devtmpfs devtmpfs /mnt/dev
mkdir -p /mnt/dev/pts /mnt/dev/shm
mount -t devpts devpts /mnt/dev/pts
# The guest gets fresh tmpfs on /tmp, /run and /dev/shm; a working folder of
# the host's under one of them (a CI clone in /tmp, say) is kept visible by
# binding it back over the tmpfs.
keep=""
for d in /dev/shm /tmp /run; do
	case "${VM_CWD:-}/" in
	"$d"/*) mkdir -p /keep && mount -o bind "/mnt$VM_CWD" /keep && keep="$VM_CWD" ;;
	esac
done
mount -t tmpfs tmpfs /mnt/dev/shm
mount -t tmpfs tmpfs /mnt/tmp
mount -t tmpfs tmpfs /mnt/run
if [ -n "$keep" ]; then
	mkdir -p "/mnt$keep" && mount -o bind /keep "/mnt$keep" || fail "cannot keep $keep visible in the guest"
fi
# The results folder appears in the guest at the same path as on the host.
mkdir -p "/mnt$VM_RESULTS" 2>/dev/null
mount -o bind /results "/mnt$VM_RESULTS" || fail "cannot bind the results folder to $VM_RESULTS"
hostname netmapd-vm
ip link set lo up 2>/dev/null

echo "@@NETMAPD-VM-BEGIN@@"
chroot /mnt /usr/bin/env -i \
	PATH=/opt/swift/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/tmp TMPDIR=/tmp LANG=C.UTF-8 TERM=dumb NETMAPD_VM=1 \
	NETMAPD_VM_RESULTS="$VM_RESULTS" \
	/bin/bash "$VM_RESULTS/.vm/cmd.sh" </dev/null
rc=$?
echo "$rc" > /results/.vm/rc
echo "@@NETMAPD-VM-END@@ rc=$rc"
sync
umount "/mnt$VM_RESULTS" /results 2>/dev/null
poweroff -f
sleep 5
