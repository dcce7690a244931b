# netmapd: build, test, run, install.
#   make run    install what is missing, build, start netmapd with a demo
#   make test   install what is missing, run every test (core, device, CUSE VM)
#   make bench  performance against the raw kernel interfaces (not part of test)

SWIFT      ?= swift
CC         ?= gcc
CFLAGS     ?= -O2 -g -Wall -Wextra -Werror
BUILD_DIR  ?= build
CONFIG     ?= debug
SWIFTFLAGS ?=
NETMAPD    := .build/$(CONFIG)/netmapd
SHIM       := $(BUILD_DIR)/libnetmapd-shim.so
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: all deps build shim test test-core test-device test-net test-vm run clean

all: build

deps:
	@scripts/install-deps.sh all

build: deps
	$(SWIFT) build -c $(CONFIG) $(SWIFTFLAGS) --product netmapd
	@$(MAKE) --no-print-directory shim

shim: $(SHIM)

$(SHIM): Sources/Shim/netmapd_shim.c Sources/ABI/include/netmapd_abi.h
	@mkdir -p $(BUILD_DIR)
	$(CC) $(CFLAGS) -fPIC -shared -fvisibility=hidden -I Sources/ABI/include -o $@ $< -ldl -pthread

# Every test: the engine in-process, then the real device on the host (FUSE
# file), then the same programs through CUSE inside a VM.
test: deps
	@$(MAKE) --no-print-directory test-core
	@$(MAKE) --no-print-directory test-device
	@$(MAKE) --no-print-directory test-vm

test-core:
	$(SWIFT) build --build-tests $(SWIFTFLAGS)
	$(SWIFT) test --skip-build $(SWIFTFLAGS)

test-device: build
	NETMAPD_BIN=$(NETMAPD) Tests/device/run-host.sh
	$(SWIFT) build -c $(CONFIG) $(SWIFTFLAGS) --product FUSEProbe
	FUSE_PROBE=.build/$(CONFIG)/FUSEProbe Tests/device/fuse-smoke.sh

test-vm: build
	NETMAPD=$(NETMAPD) SCRATCH=.build Tests/vm/cuse-device-tests.sh --no-build
	SCRATCH=.build Tests/vm/cuse-smoke.sh

run: build
	scripts/demo.sh $(NETMAPD)

clean:
	rm -rf .build $(BUILD_DIR)
