#!/usr/bin/env bash
# The Swift test suite under AddressSanitizer (with LeakSanitizer), built in
# its own scratch path so the normal .build is untouched.
#   scripts/test-asan.sh [swift test arguments, e.g. --filter ConcurrencyTests]
# Exits non-zero on a failed test or any sanitizer report.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
SCRATCH=${SCRATCH:-.build-asan}
# ld.gold warns once per ASan helper symbol; nothing to act on.
quiet() { grep -v "Cannot export local symbol"; }

swift build --build-tests --sanitize=address --scratch-path "$SCRATCH" 2>&1 | quiet
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "test-asan: build failed" >&2; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/sanitizer/lsan.supp:print_suppressions=0}
export SWIFT_BACKTRACE=enable=no   # let the sanitizer report crashes
log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift test --skip-build --sanitize=address --scratch-path "$SCRATCH" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)" "$log"; then
    echo "test-asan: sanitizer report(s) above" >&2
    rc=1
fi
[ "$rc" -eq 0 ] && echo "test-asan: clean"
exit "$rc"
