#!/usr/bin/env bash
# build-libpcap.sh: Debian's own libpcap, rebuilt with its netmap capture
# backend against netmapd's installed headers, for the libpcap/tcpdump test
# (Tests/pcap/run-pcap-tests.sh) and for anyone who wants to try it:
#
#   Tests/pcap/build-libpcap.sh          prints the directory that holds
#                                        libpcap.so.0.8 (the SONAME Debian's
#                                        tcpdump links) and pcap/*.h
#   LD_LIBRARY_PATH=$(Tests/pcap/build-libpcap.sh) tcpdump -i netmap:eth0
#
# Steps: the source package comes from the Debian archive (`apt-get source
# libpcap`, Debian's patches applied: SONAME 0.8, symbol versions); deb-src
# lines are added in a file of their own (/etc/apt/sources.list.d/
# netmapd-deb-src.sources) when apt has none, the machine's own sources are
# left alone. `make install-headers` puts <net/netmap_user.h> into a scratch
# root, configure finds it through pkg-config's flags (--enable-netmap must
# report "yes", or this fails), and `make shared` builds the library
# (about 1 minute on one core).
#
# Cache: <repo>/.cache/pcap/<source version>-<hash of include/net/*.h>/
# (gitignored): a rerun with the same Debian version and the same headers
# costs nothing; a change to either rebuilds. Needs root (apt-get).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
log() { echo "build-libpcap: $*" >&2; }

srcfile=/etc/apt/sources.list.d/netmapd-deb-src.sources
if ! apt-cache showsrc libpcap 2>/dev/null | grep -q '^Version:'; then
	if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		log "no deb-src source in apt: adding $srcfile"
		cat >"$srcfile" <<-'EOF'
		# Added by netmapd's Tests/pcap/build-libpcap.sh (apt-get source libpcap):
		# Debian's source packages, beside the machine's own binary sources.
		Types: deb-src
		URIs: http://deb.debian.org/debian
		Suites: bookworm bookworm-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
		EOF
	fi
	apt-get update -qq >&2
fi
version=$(apt-cache showsrc --only-source libpcap | sed -n 's/^Version: //p' | sort -V | tail -1)
[ -n "$version" ] || { log "apt knows no libpcap source package"; exit 1; }
hdrhash=$(cat "$root/include/net/netmap.h" "$root/include/net/netmap_user.h" | sha256sum | cut -c1-12)
cache=$root/.cache/pcap/$version-$hdrhash
if [ -f "$cache/lib/libpcap.so.0.8" ] && [ -f "$cache/include/pcap/pcap.h" ]; then
	log "cached: $cache/lib (libpcap $version, headers $hdrhash)"
	echo "$cache/lib"
	exit 0
fi

log "building libpcap $version with netmap support into $cache"
rm -rf "$cache"
mkdir -p "$cache/build"
make -s -C "$root" install-headers DESTDIR="$cache/build/hdr" PREFIX=/usr >&2
netmap_cflags=$(PKG_CONFIG_SYSROOT_DIR="$cache/build/hdr" PKG_CONFIG_LIBDIR="$cache/build/hdr/usr/share/pkgconfig" \
	pkg-config --cflags netmapd)
(cd "$cache/build" && apt-get -o APT::Sandbox::User=root source "libpcap=$version" >apt-source.log 2>&1) || {
	cat "$cache/build/apt-source.log" >&2
	exit 1
}
src=$(find "$cache/build" -maxdepth 1 -type d -name 'libpcap-*' | head -1)
cd "$src"
# Debian's own configure, minus the capture modules whose -dev packages the
# tests do not install (D-Bus, RDMA, Bluetooth, DPDK): netmap is what counts.
CPPFLAGS="$netmap_cflags" CFLAGS="-g -O2 $netmap_cflags" ./configure --enable-netmap --disable-dbus --disable-rdma --disable-bluetooth \
	--without-dpdk --without-libnl >configure.log 2>&1 || { tail -30 configure.log >&2; exit 1; }
grep -q '^checking whether we can compile the netmap support... yes' configure.log || {
	log "configure did not enable netmap:"
	grep -n 'netmap' configure.log config.log | tail -20 >&2
	exit 1
}
make -j"$(nproc)" shared >make.log 2>&1 || { tail -30 make.log >&2; exit 1; }
nm libpcap.so.0.8 >symbols.txt; grep -q ' [tT] pcap_netmap_create$' symbols.txt || { log "the library has no netmap backend"; exit 1; }
mkdir -p "$cache/lib" "$cache/include/pcap"
cp -L libpcap.so.0.8 "$cache/lib/libpcap.so.0.8"
cp pcap/*.h "$cache/include/pcap/"
cp pcap.h "$cache/include/"
echo "$version" >"$cache/VERSION"
cd "$root"
rm -rf "$cache/build"
log "built: $cache/lib/libpcap.so.0.8"
echo "$cache/lib"
