#!/usr/bin/env bash
# Run each test program given, print its output, and end with one line
# "total: N passed, N failed" summing the programs' own closing lines.
# Exit non-zero if any program failed, crashed or reported no test.
set -u
dir=$1; shift
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$(pwd)/tests/tsan.supp}
passed=0; failed=0; status=0
for t in "$@"; do
	log=$(mktemp)
	echo "== $t"
	"$t" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[A-Za-z0-9_.-]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		echo "!! $t exited $rc without a summary line"
		failed=$((failed + 1)); status=1
	else
		p=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/' <<<"$line")
		f=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/' <<<"$line")
		passed=$((passed + p)); failed=$((failed + f))
		if [ "$rc" -ne 0 ]; then
			status=1
			[ "$f" -eq 0 ] && failed=$((failed + 1)) && echo "!! $t exited $rc"
		fi
	fi
	rm -f "$log"
done
echo "== $dir"
echo "total: $passed passed, $failed failed"
exit $status
