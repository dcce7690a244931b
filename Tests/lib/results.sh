# results.sh: how every test runner counts and reports, so that none can go
# green by accident. Source it, then:
#
#   results_init SUITE        the name on the closing line
#   expect N                  N more results are due: say it before the
#                             checks that give them (a loop: its length)
#   result NAME OK [REASON]   one result, OK 1 (passed) or 0 (failed):
#                             prints "ok - NAME" or "not ok - NAME: REASON"
#   check NAME CMD [ARG...]   the result of running CMD: passed when it exits 0
#   child_results LABEL RC FILE [N]
#                             folds in a child runner's output FILE: its
#                             "ok - "/"not ok - " lines count here (named
#                             "LABEL: ...", or as they are with LABEL ""); one
#                             more failed result when the
#                             child exited non-zero (RC), when its closing
#                             "N passed, M failed" line is missing or does not
#                             match its lines, or when it gave other than N
#                             results. With results_quiet=1 in its
#                             environment the child's lines are counted, not
#                             printed again (they were shown as they came)
#   finish                    the names of the failed results, then
#                             "SUITE: N passed, M failed"; exits non-zero when
#                             anything failed or the number of results is not
#                             the number expected (a check that never ran is
#                             a failure too, reported as one more failed result)
#
# Counters: results_passed, results_failed, results_expected. A runner's EXIT
# trap may read results_failed (to keep its logs, say).

results_suite=tests
results_passed=0
results_failed=0
results_expected=0
results_failed_names=()

results_init() { results_suite=$1; }

expect() { results_expected=$((results_expected + $1)); }

result() {  # NAME OK [REASON]
	if [ "$2" = 1 ]; then
		results_passed=$((results_passed + 1))
		[ "${results_quiet:-0}" = 1 ] || echo "ok - $1"
	else
		results_failed=$((results_failed + 1))
		results_failed_names+=("$1")
		[ "${results_quiet:-0}" = 1 ] || echo "not ok - $1${3:+: $3}"
	fi
	return 0
}

check() {  # NAME CMD [ARG...]
	local name=$1
	shift
	if "$@"; then result "$name" 1; else result "$name" 0; return 1; fi
}

child_results() {  # LABEL RC FILE [N]
	local label=$1 rc=$2 file=$3 want=${4:-} line ok=0 bad=0 closing p f why=""
	while IFS= read -r line; do
		case "$line" in
		"ok - "*) ok=$((ok + 1)); result "${label:+$label: }${line#ok - }" 1 ;;
		"not ok - "*) bad=$((bad + 1)); result "${label:+$label: }${line#not ok - }" 0 ;;
		esac
	done <"$file"
	closing=$(grep -E '^([A-Za-z0-9_-]+: )?[0-9]+ passed, [0-9]+ failed$' "$file" | tail -1)
	if [ -z "$closing" ]; then
		why="no closing 'N passed, M failed' line"
	else
		read -r p f < <(echo "$closing" | sed -E 's/^([A-Za-z0-9_-]+: )?([0-9]+) passed, ([0-9]+) failed$/\2 \3/')
		[ "$p" = "$ok" ] && [ "$f" = "$bad" ] || why="its closing line says $p passed, $f failed; $ok ok and $bad not ok lines came"
	fi
	[ "$rc" = 0 ] || why="${why:+$why; }exit status $rc"
	[ -z "$want" ] || [ $((ok + bad)) = "$want" ] || why="${why:+$why; }$((ok + bad)) results, $want expected"
	# The child's own results are expected by the child, not here.
	expect $((ok + bad))
	if [ -n "$why" ]; then
		expect 1
		results_quiet=0 result "${label:-child run}: the run is complete" 0 "$why"
	fi
	[ -z "$why" ]
}

finish() {
	local got=$((results_passed + results_failed)) n
	if [ "$got" != "$results_expected" ]; then
		result "$results_suite: $results_expected results expected" 0 "$got arrived"
	fi
	for n in "${results_failed_names[@]}"; do echo "$results_suite: failed: $n"; done
	echo "$results_suite: $results_passed passed, $results_failed failed"
	[ "$results_failed" = 0 ]
	exit
}
