#!/usr/bin/env bash
# Build uktls and run the whole test suite three times: as built normally,
# under AddressSanitizer + UndefinedBehaviorSanitizer, and under
# ThreadSanitizer.  Ends with one line "total: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
status=0
passed=0; failed=0
for san in "" asan tsan; do
	log=$(mktemp)
	echo "=== make check ${san:+SAN=$san}"
	if ! make -j"$jobs" all tests ${san:+SAN=$san} >"$log" 2>&1; then
		cat "$log"; echo "build failed (${san:-normal})"; status=1; failed=$((failed + 1))
		rm -f "$log"; continue
	fi
	make check ${san:+SAN=$san} 2>&1 | tee "$log"
	[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
	line=$(grep -E '^total: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		passed=$((passed + $(sed -E 's/total: ([0-9]+) passed.*/\1/' <<<"$line")))
		failed=$((failed + $(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$line")))
	else
		failed=$((failed + 1)); status=1
	fi
	rm -f "$log"
done
echo "=== all builds"
echo "total: $passed passed, $failed failed"
exit $status
