#!/usr/bin/env bash
# results-selftest.sh: Tests/lib/results.sh itself, so that a runner built on
# it cannot go green by accident: every way a run can fall short (a result
# missing, a child that exited non-zero, a child without its closing line or
# with fewer results than it should give) must end in a non-zero exit. No
# root, no build; part of `make test-fast`.
#
#   Tests/lib/results-selftest.sh
set -uo pipefail

lib=$(cd "$(dirname "$0")" && pwd)/results.sh
work=$(mktemp -d /tmp/netmapd-results-selftest.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$lib"
results_init results-selftest

# runner NAME BODY: a runner script using the library; sets $out and $rc.
runner() {
	printf '. %q\nresults_init %s\n%s\n' "$lib" "$1" "$2" >"$work/$1.sh"
	out=$(bash "$work/$1.sh" 2>&1)
	rc=$?
	printf '%s\n' "$out" >"$work/$1.out"
}
last() { printf '%s\n' "$out" | tail -1; }

expect 12

runner complete 'expect 2; result one 1; check two true; finish'
check "every expected result passed: exit 0, '2 passed, 0 failed'" \
	test "$rc" = 0 -a "$(last)" = "complete: 2 passed, 0 failed"

runner short 'expect 3; result one 1; result two 1; finish'
check "a result missing: exit 1, counted as a failure ($(last))" \
	test "$rc" = 1 -a "$(last)" = "short: 2 passed, 1 failed"

runner extra 'expect 1; result one 1; result two 1; finish'
check "more results than expected: exit 1 (the expectation is stale)" test "$rc" = 1

runner failing 'expect 2; result one 1; check two false; finish'
check "a failed check: exit 1, named ($(printf '%s\n' "$out" | grep -c '^failing: failed: two$') line)" \
	test "$rc" = 1 -a "$(last)" = "failing: 1 passed, 1 failed"

# A child's output folded into a parent.
printf 'ok - a\nok - b\nchild: 2 passed, 0 failed\n' >"$work/child-ok.out"
runner parent-ok "child_results kid 0 $work/child-ok.out 2; finish"
check "a complete child (exit 0, closing line, 2 of 2): exit 0, its results counted" \
	test "$rc" = 0 -a "$(last)" = "parent-ok: 2 passed, 0 failed"
check "... and named after it" grep -q '^ok - kid: a$' "$work/parent-ok.out"

runner parent-rc "child_results kid 1 $work/child-ok.out 2; finish"
check "a child that exited non-zero with only ok lines: exit 1" \
	test "$rc" = 1 -a "$(last)" = "parent-rc: 2 passed, 1 failed"

printf 'ok - a\n' >"$work/child-short.out"
runner parent-short "child_results kid 0 $work/child-short.out 2; finish"
check "a child that stopped half-way (1 of 2, no closing line): exit 1" test "$rc" = 1
check "... and says why" grep -q "^not ok - kid: the run is complete: no closing 'N passed, M failed' line; 1 results, 2 expected$" \
	"$work/parent-short.out"

printf 'ok - a\nchild: 1 passed, 0 failed\n' >"$work/child-few.out"
runner parent-few "child_results kid 0 $work/child-few.out 2; finish"
check "a child that is complete by its own count but gives fewer than the parent expects: exit 1" test "$rc" = 1

printf 'ok - a\nok - b\nchild: 3 passed, 0 failed\n' >"$work/child-lie.out"
runner parent-lie "child_results kid 0 $work/child-lie.out; finish"
check "a child whose closing line does not match its lines: exit 1" test "$rc" = 1

runner parent-quiet "results_quiet=1 child_results kid 0 $work/child-ok.out 2; finish"
check "results_quiet=1: the child's lines are counted, not printed again" \
	test "$rc" = 0 -a "$(printf '%s\n' "$out" | grep -c '^ok - ')" = 0

finish
