#!/usr/bin/env bash
# Build uktls and run the whole test suite three times: as built normally,
# under AddressSanitizer + UndefinedBehaviorSanitizer, and under
# ThreadSanitizer; with --fuzz SECONDS, then every fuzz target for that
# long.  Ends with one line "total: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
fuzz_secs=0
if [ "${1:-}" = "--fuzz" ]; then
	fuzz_secs=${2:?--fuzz SECONDS}
fi
jobs=$(nproc 2>/dev/null || echo 2)
status=0
passed=0; failed=0
add_total() {
	local line
	line=$(grep -E '^total: [0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1)
	if [ -n "$line" ]; then
		passed=$((passed + $(sed -E 's/total: ([0-9]+) passed.*/\1/' <<<"$line")))
		failed=$((failed + $(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$line")))
	else
		failed=$((failed + 1)); status=1
	fi
}
for san in "" asan tsan; do
	log=$(mktemp)
	echo "=== make check ${san:+SAN=$san}"
	if ! make -j"$jobs" all tests ${san:+SAN=$san} >"$log" 2>&1; then
		cat "$log"; echo "build failed (${san:-normal})"; status=1; failed=$((failed + 1))
		rm -f "$log"; continue
	fi
	make check ${san:+SAN=$san} 2>&1 | tee "$log"
	[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
	add_total "$log"
	rm -f "$log"
done
if [ "$fuzz_secs" -gt 0 ]; then
	log=$(mktemp)
	echo "=== make fuzz-run FUZZ_SECONDS=$fuzz_secs"
	if ! make -j"$jobs" fuzz >"$log" 2>&1; then
		cat "$log"; echo "fuzz build failed"; status=1; failed=$((failed + 1))
	else
		make fuzz-run FUZZ_SECONDS="$fuzz_secs" 2>&1 | tee "$log"
		[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
		add_total "$log"
	fi
	rm -f "$log"
fi
echo "=== all builds"
echo "total: $passed passed, $failed failed"
exit $status
