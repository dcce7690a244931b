# netmapd: build, test, run, install.
#   make run    install what is missing, build, start netmapd with a demo
#   make test   install what is missing, run every test (core, device, network,
#               sanitized daemon, CUSE VM, service, fuzzing, libpcap/tcpdump,
#               the Debian package, a part of the kernel matrix)
#   make test-fast  no root, nothing installed: builds and runs the Swift tests,
#               checks every shell script's syntax and the runners' counting
#   make test-daemon-sanitized  netmapd under TSan and ASan with real traffic
#               (make test runs its TSan part with CI sizes)
#   make test-pcap  Debian's libpcap rebuilt with its netmap backend against
#               the project's headers, Debian's tcpdump capturing through it on
#               both backends, pcap_inject (not part of test; .ci/run runs it:
#               ~2 min on a fresh clone, ~30 s once the library is cached)
#   make deb    the Debian package (build/netmapd_VERSION_ARCH.deb), lintian
#   make test-kernels  the kernel matrix: device, both net suites and a
#               zero-copy bridge on Debian's 6.1, 6.12 and 6.12 cloud kernels
#               in the VM, with a kernel x suite table (not part of test; run
#               before each release; KERNELS=, SUITES= select)
#   make bench  performance against the raw kernel interfaces (not part of test)
#   make soak   a release netmapd under churning mixed traffic for SOAK_MINUTES
#               (default 5): every frame accounted for, memory flat, pool
#               whole, clean exit (not part of test; SOAK_NETMAPD=path to
#               soak a given daemon)

SWIFT      ?= swift
CC         ?= gcc
CFLAGS     ?= -O2 -g -Wall -Wextra -Werror
BUILD_DIR  ?= build
CONFIG     ?= debug
SWIFTFLAGS ?=
NETMAPD    := .build/$(CONFIG)/netmapd
SHIM       := $(BUILD_DIR)/libnetmapd-shim.so
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: test-kernels-ci deb test-deb test-pcap bench all deps build shim test test-fast test-core test-device test-net test-vm run clean fuzz fuzz-ci test-asan test-tsan install uninstall test-service soak test-daemon-sanitized test-daemon-sanitized-ci test-kernels

all: build

deps:
	@scripts/install-deps.sh all

build: deps
	$(SWIFT) build -c $(CONFIG) $(SWIFTFLAGS) --product netmapd
	$(SWIFT) build -c $(CONFIG) $(SWIFTFLAGS) --product netmapctl
	@$(MAKE) --no-print-directory shim

shim: $(SHIM)

$(SHIM): Sources/Shim/netmapd_shim.c Sources/ABI/CNetmapABI/include/netmapd_abi.h
	@mkdir -p $(BUILD_DIR)
	$(CC) $(CFLAGS) -fPIC -shared -fvisibility=hidden -I Sources/ABI/CNetmapABI/include -o $@ $< $(LDFLAGS) -ldl -pthread

# Every test: the engine in-process, then the real device on the host (FUSE
# file), then real interfaces (veth in namespaces), then the daemon built
# with ThreadSanitizer through the device tests and the AF_XDP suite, then
# the device programs through CUSE inside a VM, then the service (unit, man,
# install, netmapctl, the unit booted under systemd in the VM), then a short
# fuzzing run.
test: deps
	@$(MAKE) --no-print-directory test-core
	@$(MAKE) --no-print-directory test-device
	@$(MAKE) --no-print-directory test-net
	@$(MAKE) --no-print-directory test-daemon-sanitized-ci
	@$(MAKE) --no-print-directory test-vm
	@$(MAKE) --no-print-directory test-service
	@$(MAKE) --no-print-directory fuzz-ci
	@$(MAKE) --no-print-directory test-pcap
	@$(MAKE) --no-print-directory test-deb
	@$(MAKE) --no-print-directory test-kernels-ci

# The part of the kernel matrix make test runs (about 7 minutes here): the
# zero-copy and host-ring bridges on both backends on Debian's 6.1 (CUSE, the
# steal filter with the shipped modules, a link without carrier), and
# --frontend auto's choices on 6.12. The whole matrix is make test-kernels.
test-kernels-ci: build
	$(MAKE) --no-print-directory test-kernels KERNELS=6.1 SUITES="bridge-packet bridge-xdp"
	$(MAKE) --no-print-directory test-kernels KERNELS=6.12 SUITES="frontend"

test-core:
	$(SWIFT) build --build-tests $(SWIFTFLAGS)
	$(SWIFT) test --skip-build $(SWIFTFLAGS)

# What needs no root and touches nothing outside the tree: the Swift tests,
# the syntax of every shell script (bash -n, sh -n for the VM's busybox init),
# and Tests/lib/results.sh's own checks (a runner cannot go green by accident).
SHELL_SCRIPTS = $(shell find . -name '*.sh' -not -path './.build*' -not -path './.cache/*' -not -path './Tests/vm/cache/*' | sort)
test-fast: test-core
	@set -e; for f in $(SHELL_SCRIPTS); do \
		case "$$(head -1 $$f)" in *busybox*) sh -n $$f ;; *) bash -n $$f ;; esac || { echo "syntax: $$f"; exit 1; }; \
	done; echo "shell syntax: $(words $(SHELL_SCRIPTS)) scripts"
	Tests/lib/results-selftest.sh

test-device: build
	NETMAPD_BIN=$(NETMAPD) Tests/device/run-host.sh
	Tests/headers/run-headers-tests.sh $(NETMAPD)
	$(SWIFT) build -c $(CONFIG) $(SWIFTFLAGS) --product FUSEProbe
	FUSE_PROBE=.build/$(CONFIG)/FUSEProbe Tests/device/fuse-smoke.sh

# Interfaces through the generic (AF_PACKET) backend, veth pairs in namespaces.
test-net: build
	Tests/net/run-net-tests.sh $(NETMAPD)
	Tests/net/run-xdp-tests.sh $(NETMAPD)
	Tests/net/run-vale-nic-tests.sh $(NETMAPD)
	NET_BACKEND=packet Tests/net/run-host-ring-tests.sh $(NETMAPD)
	NET_BACKEND=xdp Tests/net/run-host-ring-tests.sh $(NETMAPD)

# libpcap and tcpdump as clients (Tests/pcap/run-pcap-tests.sh says what);
# the rebuilt libpcap is cached in .cache/pcap/, keyed by the Debian source
# version and the headers.
test-pcap: build
	@scripts/install-deps.sh pcap
	Tests/pcap/run-pcap-tests.sh $(NETMAPD)

test-vm: build
	NETMAPD=$(NETMAPD) SCRATCH=.build Tests/vm/cuse-device-tests.sh --no-build
	SCRATCH=.build Tests/vm/cuse-smoke.sh

# The kernel matrix (Tests/vm/kernel-matrix.sh says what and how).
test-kernels: build
	KERNELS="$(KERNELS)" SUITES="$(SUITES)" NETMAPD=$(NETMAPD) Tests/vm/kernel-matrix.sh --no-build

run: build
	scripts/demo.sh $(NETMAPD)

# Performance against the raw kernel interfaces, in the same invocation
# (bench/run.sh says what and how). A release build; results in
# bench-results/latest/ (bench.md, bench.json, bench.png, runs.jsonl).
# BENCH_SECS, BENCH_ROUNDS, BENCH_GROUPS, BENCH_SIZES, BENCH_BATCHES tune it.
bench:
	@scripts/install-deps.sh bench
	$(SWIFT) build -c release $(SWIFTFLAGS) --product netmapd
	bench/run.sh .build/release/netmapd

# Robustness: libFuzzer targets (FUZZ_SECONDS per target), the core tests
# under AddressSanitizer and ThreadSanitizer.
FUZZ_SECONDS ?= 300
fuzz: deps
	Fuzz/run.sh $(FUZZ_SECONDS)

fuzz-ci: deps
	Fuzz/run.sh 15

test-asan: deps
	scripts/test-asan.sh

test-tsan: deps
	scripts/test-tsan.sh

# The real daemon under sanitizers (scripts/test-daemon-sanitized.sh says
# what and how): netmapd built with ThreadSanitizer, then with
# AddressSanitizer + LeakSanitizer (C modules with UBSan as well), each run
# through the device tests, both net suites and a short soak; fails on any
# sanitizer report. Scratch paths .build-daemon-tsan, .build-daemon-asan.
test-daemon-sanitized: deps
	scripts/test-daemon-sanitized.sh

# Its part in make test: the TSan daemon, device tests and the AF_XDP suite,
# with CI sizes (SAN_CI=1: fewer frames and SIGKILL runs).
test-daemon-sanitized-ci: deps
	SAN_CI=1 scripts/test-daemon-sanitized.sh tsan -- device xdp

# Soak (Tests/soak/soak.sh, which says exactly what it checks): a netmapd
# per namespace of a veth fixture, both interface backends, pipes and null
# ports, clients coming, going and being killed for SOAK_MINUTES. Release
# builds in their own scratch path, so a debug build is left alone.
SOAK_MINUTES ?= 5
SOAK_SCRATCH ?= .build-soak
SOAK_NETMAPD ?=
soak:
	@scripts/install-deps.sh all
	$(if $(SOAK_NETMAPD),,$(SWIFT) build -c release --product netmapd --scratch-path $(SOAK_SCRATCH))
	$(SWIFT) build -c release --product netmapctl --scratch-path $(SOAK_SCRATCH)
	SOAK_MINUTES=$(SOAK_MINUTES) NETMAPCTL=$(SOAK_SCRATCH)/release/netmapctl \
		Tests/soak/soak.sh $(or $(SOAK_NETMAPD),$(SOAK_SCRATCH)/release/netmapd)

clean:
	rm -rf .build $(BUILD_DIR)

# --- service (helper): make install / uninstall / test-service ----------------
# make install [PREFIX=/usr/local] [DESTDIR=]   release build, then:
#   $(SBINDIR)/netmapd  $(BINDIR)/netmapctl  $(SHIMDIR)/libnetmapd-shim.so
#   $(UNITDIR)/netmapd.service (ExecStart rewritten to $(SBINDIR)/netmapd)
#   $(UDEVRULESDIR)/60-netmapd.rules  $(MODULESLOADDIR)/netmapd.conf
#   $(SYSUSERSDIR)/netmapd.conf  $(MANDIR)/man{5,7,8}/...
#   $(SYSCONFDIR)/netmapd.conf (only if there is none yet)
#   $(INCLUDEDIR)/net/netmap.h, net/netmap_user.h, $(PKGCONFIGDIR)/netmapd.pc
# Unit, udev rule, modules-load and sysusers files go under $(PREFIX)/lib:
# systemd, udev, modules-load and sysusers read /usr/local/lib/... as well as
# /usr/lib/..., so PREFIX=/usr/local (default) and PREFIX=/usr (packages) both
# work. The configuration file is /etc/netmapd.conf whatever PREFIX is: that
# is the path netmapd reads. Binaries are linked with --static-swift-stdlib,
# so the installed daemon does not need the Swift toolchain.
PREFIX             ?= /usr/local
SBINDIR            ?= $(PREFIX)/sbin
BINDIR             ?= $(PREFIX)/bin
LIBDIR             ?= $(PREFIX)/lib
SHIMDIR            ?= $(LIBDIR)/netmapd
UNITDIR            ?= $(LIBDIR)/systemd/system
UDEVRULESDIR       ?= $(LIBDIR)/udev/rules.d
MODULESLOADDIR     ?= $(LIBDIR)/modules-load.d
SYSUSERSDIR        ?= $(LIBDIR)/sysusers.d
MANDIR             ?= $(PREFIX)/share/man
INCLUDEDIR         ?= $(PREFIX)/include
PKGCONFIGDIR       ?= $(PREFIX)/share/pkgconfig
VERSION            := $(shell sed -n 's/.*softwareVersion = "\(.*\)"/\1/p' Sources/Control/NetmapControl/ControlProtocol.swift)
SYSCONFDIR         ?= /etc
INSTALL            ?= install
INSTALL_SCRATCH    ?= .build
INSTALL_SWIFTFLAGS ?= --static-swift-stdlib
MAN_PAGES          := man/netmapd.8 man/netmapctl.8 man/netmapd.conf.5 man/netmapd-shim.7

.PHONY: install-build install-headers

# The netmap-compatible headers (include/net/, written from docs/netmap-abi.md)
# and their pkg-config file: netmap programs build against these alone.
install-headers:
	$(INSTALL) -D -m 0644 include/net/netmap.h $(DESTDIR)$(INCLUDEDIR)/net/netmap.h
	$(INSTALL) -D -m 0644 include/net/netmap_user.h $(DESTDIR)$(INCLUDEDIR)/net/netmap_user.h
	$(INSTALL) -d $(DESTDIR)$(PKGCONFIGDIR)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
		include/netmapd.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/netmapd.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/netmapd.pc

install-build:
	@scripts/install-deps.sh build
	$(SWIFT) build -c release --scratch-path $(INSTALL_SCRATCH) $(INSTALL_SWIFTFLAGS) --product netmapd
	$(SWIFT) build -c release --scratch-path $(INSTALL_SCRATCH) $(INSTALL_SWIFTFLAGS) --product netmapctl
	@$(MAKE) --no-print-directory shim

install: install-build install-headers
	$(INSTALL) -D -m 0755 $(INSTALL_SCRATCH)/release/netmapd $(DESTDIR)$(SBINDIR)/netmapd
	$(INSTALL) -D -m 0755 $(INSTALL_SCRATCH)/release/netmapctl $(DESTDIR)$(BINDIR)/netmapctl
	$(INSTALL) -D -m 0644 $(SHIM) $(DESTDIR)$(SHIMDIR)/libnetmapd-shim.so
	$(INSTALL) -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/sbin/netmapd|$(SBINDIR)/netmapd|' systemd/netmapd.service >$(DESTDIR)$(UNITDIR)/netmapd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/netmapd.service
	$(INSTALL) -D -m 0644 systemd/udev/60-netmapd.rules $(DESTDIR)$(UDEVRULESDIR)/60-netmapd.rules
	$(INSTALL) -D -m 0644 systemd/modules-load.d/netmapd.conf $(DESTDIR)$(MODULESLOADDIR)/netmapd.conf
	$(INSTALL) -D -m 0644 systemd/sysusers.d/netmapd.conf $(DESTDIR)$(SYSUSERSDIR)/netmapd.conf
	@set -e; for p in $(MAN_PAGES); do \
		s=$${p##*.}; d=$(DESTDIR)$(MANDIR)/man$$s; \
		$(INSTALL) -d $$d; \
		echo "sed 's|/usr/local|$(PREFIX)|g' $$p >$$d/$${p##*/}"; \
		sed 's|/usr/local|$(PREFIX)|g' $$p >$$d/$${p##*/}; chmod 0644 $$d/$${p##*/}; \
	done
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/netmapd.conf ]; then \
		echo "install: keeping the existing $(DESTDIR)$(SYSCONFDIR)/netmapd.conf"; \
	else \
		echo "$(INSTALL) -D -m 0644 systemd/etc/netmapd.conf $(DESTDIR)$(SYSCONFDIR)/netmapd.conf"; \
		$(INSTALL) -D -m 0644 systemd/etc/netmapd.conf $(DESTDIR)$(SYSCONFDIR)/netmapd.conf; \
	fi
	@if [ -z "$(DESTDIR)" ]; then \
		echo "install: done. To start: systemd-sysusers; udevadm control --reload; modprobe cuse;"; \
		echo "install:   systemctl daemon-reload; systemctl enable --now netmapd; netmapctl status"; \
	fi

# The Debian package: build/netmapd_VERSION_ARCH.deb from what install puts
# in place (PREFIX=/usr), packaging/debian/ for the rest; lintian must pass
# (scripts/make-deb.sh says how).
deb:
	@scripts/install-deps.sh deb
	scripts/make-deb.sh

# The package installed with dpkg -i into the CUSE VM under a real systemd,
# started by its maintainer scripts, used by a netmap program built against
# its headers, purged, and nothing left (Tests/service/deb-in-vm.sh; about
# 6 minutes under TCG on a busy 2-core machine; .ci/run runs it after make test).
test-deb: deb
	Tests/service/deb-in-vm.sh

# Removes what install put there; the configuration file only if unchanged.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/netmapd $(DESTDIR)$(BINDIR)/netmapctl
	rm -f $(DESTDIR)$(SHIMDIR)/libnetmapd-shim.so
	rmdir $(DESTDIR)$(SHIMDIR) 2>/dev/null || true
	rm -f $(DESTDIR)$(UNITDIR)/netmapd.service $(DESTDIR)$(UDEVRULESDIR)/60-netmapd.rules
	rm -f $(DESTDIR)$(MODULESLOADDIR)/netmapd.conf $(DESTDIR)$(SYSUSERSDIR)/netmapd.conf
	rm -f $(foreach p,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(p)))/$(notdir $(p)))
	rm -f $(DESTDIR)$(INCLUDEDIR)/net/netmap.h $(DESTDIR)$(INCLUDEDIR)/net/netmap_user.h
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/netmapd.pc
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/netmapd.conf ]; then \
		if cmp -s systemd/etc/netmapd.conf $(DESTDIR)$(SYSCONFDIR)/netmapd.conf; then \
			echo "rm -f $(DESTDIR)$(SYSCONFDIR)/netmapd.conf"; rm -f $(DESTDIR)$(SYSCONFDIR)/netmapd.conf; \
		else \
			echo "uninstall: keeping $(DESTDIR)$(SYSCONFDIR)/netmapd.conf (changed since install)"; \
		fi; \
	fi

# Unit, man pages, install tree, configuration file, control socket counters,
# restart after SIGKILL (root; FUSE-file front end on this host).
test-service:
	Tests/service/run-service-tests.sh
# --- end service (helper) -------------------------------------------------------
