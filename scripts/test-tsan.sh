#!/usr/bin/env bash
# The Swift test suite under ThreadSanitizer, built in its own scratch path
# so the normal .build is untouched. Tests/CoreTests/ConcurrencyTests.swift
# holds the tests written for it (concurrent syncs on different rings, poll
# wake-ups, release racing with traffic, registry churn during traffic).
#   scripts/test-tsan.sh [swift test arguments, e.g. --filter ConcurrencyTests]
# Exits non-zero on a failed test or any ThreadSanitizer report.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
SCRATCH=${SCRATCH:-.build-tsan}

swift build --build-tests --sanitize=thread --scratch-path "$SCRATCH"
[ $? -eq 0 ] || { echo "test-tsan: build failed" >&2; exit 1; }

export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1:suppressions=$PWD/scripts/sanitizer/tsan.supp}
export SWIFT_BACKTRACE=enable=no
log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift test --skip-build --sanitize=thread --scratch-path "$SCRATCH" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if grep -q "WARNING: ThreadSanitizer" "$log"; then
    echo "test-tsan: $(grep -c 'WARNING: ThreadSanitizer' "$log") ThreadSanitizer report(s) above" >&2
    rc=1
fi
[ "$rc" -eq 0 ] && echo "test-tsan: clean"
exit "$rc"
