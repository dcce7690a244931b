#!/usr/bin/env bash
# make-deb.sh: netmapd's Debian package (make deb).
#
#   scripts/make-deb.sh            (DEB_SCRATCH: the swift scratch path of
#                                  the release build, default .build-svc)
#                                  writes build/netmapd_VERSION_ARCH.deb and
#                                  runs lintian on it (fails on any tag, even
#                                  informational, that packaging/debian/
#                                  netmapd.lintian-overrides does not justify)
#
# The tree is what `make install DESTDIR=... PREFIX=/usr` installs (release
# build with Swift's standard library linked in statically, so the package
# needs no Swift toolchain), with the unit and the udev rule under /lib as
# Debian 12 keeps them. packaging/debian/ holds the packaging: debhelper
# (dpkg-buildpackage -b in build/deb/, no Swift build there) adds the
# maintainer scripts that create group netmap and enable and start
# netmapd.service, marks /etc/netmapd.conf a conffile, compresses the man
# pages and computes the library dependencies. VERSION is netmapd's own
# (ControlProtocol.softwareVersion); the package is native.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=$(sed -n 's/.*softwareVersion = "\(.*\)"/\1/p' Sources/Control/NetmapControl/ControlProtocol.swift)
[ -n "$version" ] || { echo "make-deb: no version in ControlProtocol.swift" >&2; exit 1; }
out=$root/build
work=$out/deb
src=$work/netmapd-$version
rm -rf "$work"
mkdir -p "$src"
cp -a packaging/debian "$src/debian"

# The preload shim with Debian's hardening flags (fortify, stack protector,
# full RELRO): rebuilt here, the tests' build of it has the plain ones.
hardening="DEB_BUILD_MAINT_OPTIONS=hardening=+all"
make --no-print-directory -B shim CFLAGS="$(env $hardening dpkg-buildflags --get CFLAGS) $(env $hardening dpkg-buildflags --get CPPFLAGS) -Wall -Wextra -Werror" \
	LDFLAGS="$(env $hardening dpkg-buildflags --get LDFLAGS)" >"$work/shim.log" 2>&1 || { cat "$work/shim.log" >&2; exit 1; }
echo "make-deb: make install DESTDIR=$src/staged PREFIX=/usr" >&2
# The release build is the service tests' (.build-svc), so CI builds it once.
make --no-print-directory install DESTDIR="$src/staged" PREFIX=/usr SYSCONFDIR=/etc \
	INSTALL_SCRATCH="${DEB_SCRATCH:-$root/.build-svc}" \
	UNITDIR=/lib/systemd/system UDEVRULESDIR=/lib/udev/rules.d >"$work/install.log" 2>&1 || {
	tail -30 "$work/install.log" >&2
	exit 1
}

# The changelog: one entry for this build, dated by the commit it comes from.
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
date=$(git log -1 --format=%aD 2>/dev/null || date -R)
maint=$(sed -n 's/^Maintainer: //p' packaging/debian/control)
cat >"$src/debian/changelog" <<EOF
netmapd ($version) unstable; urgency=medium

  * Package of netmapd $version, git commit $commit (make deb).

 -- $maint  $date
EOF

echo "make-deb: dpkg-buildpackage -b in $src" >&2
(cd "$src" && dpkg-buildpackage -b -us -uc >"$work/dpkg-buildpackage.log" 2>&1) || {
	tail -40 "$work/dpkg-buildpackage.log" >&2
	exit 1
}
deb=$(ls "$work"/netmapd_"$version"_*.deb)
cp "$deb" "$out/"
deb=$out/$(basename "$deb")
echo "make-deb: $deb" >&2
dpkg-deb --info "$deb" | sed -n '/Package:/,$p' >&2

# lintian: nothing at all (errors, warnings, nor informational tags), but for
# the tags justified one by one in packaging/debian/netmapd.lintian-overrides
# (lintian --show-overrides lists them).
echo "make-deb: lintian" >&2
command -v lintian >/dev/null || { echo "make-deb: lintian is not installed (scripts/install-deps.sh deb)" >&2; exit 1; }
tags=$(lintian --display-info --tag-display-limit 0 "$deb" 2>/dev/null | grep -E '^[EWIXP]: ' || true)
if [ -n "$tags" ]; then
	echo "$tags" >&2
	echo "make-deb: lintian is not clean: fix each tag or justify it in packaging/debian/netmapd.lintian-overrides" >&2
	exit 1
fi
overridden=$(lintian --display-info --show-overrides "$deb" 2>/dev/null | grep -c '^O: ' || true)
echo "make-deb: lintian clean ($overridden overridden tags, justified in packaging/debian/netmapd.lintian-overrides)" >&2
echo "$deb"
