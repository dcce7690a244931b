#!/usr/bin/env bash
# Builds the libFuzzer targets of netmapd into .build-fuzz/bin/.
#
# The engine's sources are compiled straight with swiftc/clang, one module at
# a time, with -sanitize=fuzzer,address (coverage + ASan), so nothing here
# touches Package.swift or the normal `swift build` / `swift test`:
#   CNetmapABI, CNetmapSys (C)  ->  DeviceInterface  ->  NetmapCore (with
#   its pipes and null ports; the interface backends and their C libraries
#   are another module, NetmapPorts, which the fuzzers do not need)
#   ->  one executable per Fuzz/Targets/<Name>/ + Fuzz/Targets/Common/
# Usage: Fuzz/build.sh [target...]   (default: all targets)
# Env:   SANITIZE (default fuzzer,address), OPT (default -O), SCRATCH (.build-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=/opt/swift/usr/bin:$PATH
SCRATCH=${SCRATCH:-$ROOT/.build-fuzz}
SANITIZE=${SANITIZE:-fuzzer,address}
OPT=${OPT:--O}
MOD=$SCRATCH/modules
OBJ=$SCRATCH/obj
BIN=$SCRATCH/bin
mkdir -p "$MOD" "$OBJ" "$BIN" "$MOD/CNetmapABI" "$MOD/CNetmapSys"

ALL_TARGETS=(Legacy Ctrl Name Sync)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL_TARGETS[@]}")

CSAN="-fsanitize=${SANITIZE/fuzzer/fuzzer-no-link}"
# -package-name as SwiftPM passes it: Core has `package` declarations (test seams).
SWIFTC_FLAGS=(-swift-version 6 $OPT -g -sanitize="$SANITIZE" -parse-as-library -package-name netmapd -I "$MOD"
              -Xcc -fmodule-map-file="$MOD/CNetmapABI/module.modulemap"
              -Xcc -fmodule-map-file="$MOD/CNetmapSys/module.modulemap")

# Rebuild a step only when an input is newer than its output.
stale() { # output inputs...
    local out=$1; shift
    [ -e "$out" ] || return 0
    local f
    for f in "$@"; do [ "$f" -nt "$out" ] && return 0; done
    return 1
}

# C modules.
cat > "$MOD/CNetmapABI/module.modulemap.new" <<MM
module CNetmapABI {
    header "$ROOT/Sources/ABI/CNetmapABI/include/netmapd_abi.h"
    export *
}
MM
cat > "$MOD/CNetmapSys/module.modulemap.new" <<MM
module CNetmapSys {
    header "$ROOT/Sources/Core/CNetmapSys/include/nmd_sys.h"
    export *
}
MM
for m in CNetmapABI CNetmapSys; do
    cmp -s "$MOD/$m/module.modulemap.new" "$MOD/$m/module.modulemap" 2>/dev/null \
        || mv "$MOD/$m/module.modulemap.new" "$MOD/$m/module.modulemap"
    rm -f "$MOD/$m/module.modulemap.new"
done
if stale "$OBJ/netmapd_abi.o" Sources/ABI/CNetmapABI/netmapd_abi.c Sources/ABI/CNetmapABI/include/netmapd_abi.h; then
    clang -c -O1 -g $CSAN -I Sources/ABI/CNetmapABI/include Sources/ABI/CNetmapABI/netmapd_abi.c -o "$OBJ/netmapd_abi.o"
fi
if stale "$OBJ/nmd_sys.o" Sources/Core/CNetmapSys/nmd_sys.c Sources/Core/CNetmapSys/include/nmd_sys.h; then
    clang -c -O1 -g $CSAN -I Sources/Core/CNetmapSys/include Sources/Core/CNetmapSys/nmd_sys.c -o "$OBJ/nmd_sys.o"
fi

# Swift library modules, each compiled whole-module into one object; a module
# is rebuilt when its sources or a module built before it changed.
BUILT=("$OBJ/netmapd_abi.o" "$OBJ/nmd_sys.o")
swift_module() { # name sources...
    local name=$1; shift
    if stale "$OBJ/$name.o" "$@" "${BUILT[@]}"; then
        echo "swiftc $name"
        swiftc "${SWIFTC_FLAGS[@]}" -module-name "$name" -wmo -c "$@" \
            -emit-module -emit-module-path "$MOD/$name.swiftmodule" -o "$OBJ/$name.o"
        touch "$OBJ/$name.o"   # swiftc leaves an unchanged object untouched
    fi
    BUILT+=("$OBJ/$name.o")
}
swift_module DeviceInterface $(find Sources/Core/DeviceInterface -name '*.swift' | sort)
swift_module NetmapCore $(find Sources/Core/NetmapCore -name '*.swift' | sort)

LIBS=("$OBJ/netmapd_abi.o" "$OBJ/nmd_sys.o" "$OBJ/DeviceInterface.o" "$OBJ/NetmapCore.o")
COMMON=($(find Fuzz/Targets/Common -name '*.swift' | sort))
for t in "${TARGETS[@]}"; do
    src=($(find "Fuzz/Targets/$t" -name '*.swift' | sort))
    exe="$BIN/fuzz-$(echo "$t" | tr 'A-Z' 'a-z')"
    if stale "$exe" "${src[@]}" "${COMMON[@]}" "${LIBS[@]}"; then
        echo "swiftc $exe"
        swiftc "${SWIFTC_FLAGS[@]}" -use-ld=lld -module-name "Fuzz$t" -wmo "${COMMON[@]}" "${src[@]}" "${LIBS[@]}" -o "$exe"
        touch "$exe"
    fi
done
