#!/usr/bin/env bash
# Installs the Debian packages netmapd's build, tests and demo need, if any
# is missing. Safe to run again: it only calls apt-get when something is absent.
#   scripts/install-deps.sh [build|test|bench|all]   (default all; bench adds
#   what make bench needs on top of all: python3-matplotlib for its chart)
set -euo pipefail

build_pkgs=(libfuse3-dev pkg-config gcc make)
# generic backend (AF_PACKET): interface facts through libnl, the steal filter through libbpf
build_pkgs+=(libnl-3-dev libnl-route-3-dev libbpf-dev)
# native backend (AF_XDP): sockets and rings through libxdp's xsk API
build_pkgs+=(libxdp-dev)
test_pkgs=(qemu-system-x86 busybox-static cpio kmod iproute2 gzip)
# net tests (Tests/net): ping across the veth pair, offloads off
test_pkgs+=(iputils-ping ethtool)
# service tests and make soak read netmapctl status --json with jq
test_pkgs+=(jq)
# host-ring tests (Tests/net/run-host-ring-tests.sh): the TCP transfer's ends
test_pkgs+=(python3)
bench_pkgs=(python3 python3-matplotlib)
case "${1:-all}" in
	build) want=("${build_pkgs[@]}") ;;
	test|all) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
	bench) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
	*) echo "usage: $0 [build|test|bench|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
