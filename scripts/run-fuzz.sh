#!/usr/bin/env bash
# Run each libFuzzer target given for SECONDS seconds:
#
#   scripts/run-fuzz.sh SECONDS build/fuzz/fuzz_a build/fuzz/fuzz_b ...
#
# Each target starts from a copy of its seed corpus fuzz/corpus/<target>/ in
# a temporary directory, so that the checked-in seeds stay as they are, and
# runs with -max_total_time.  A crash, sanitizer report, leak, timeout
# (-timeout, per input) or out-of-memory fails the target; the input that
# did it is kept under fuzz/out/ with the log.  Prints the inputs each target
# tried and ends with "total: N passed, N failed", one pass or fail per
# target.  Exits non-zero if any target failed.  FUZZ_TIMEOUT (seconds one
# input may take, default 30) and FUZZ_MAX_LEN (the largest input, default
# 16384) tune the runs.
set -u
if [ "$#" -lt 2 ]; then
	echo "usage: $0 SECONDS TARGET..." >&2
	exit 2
fi
secs=$1; shift
case $secs in
'' | *[!0-9]*) echo "$0: SECONDS must be a number" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/fuzz/out
mkdir -p "$out"
# Seconds one input may take before it counts as a hang.
per_input=${FUZZ_TIMEOUT:-30}
# The fuzzer stops itself at -max_total_time; this only catches a fuzzer
# that cannot (stuck outside the input it is running).
guard=$((secs * 2 + per_input + 60))
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0; failed=0; status=0
for bin in "$@"; do
	name=$(basename "$bin")
	if [ ! -x "$bin" ]; then
		echo "!! $name: $bin is not an executable"
		failed=$((failed + 1)); status=1
		continue
	fi
	work=$(mktemp -d "${TMPDIR:-/tmp}/uktls-fuzz-$name.XXXXXX")
	seeds=$root/fuzz/corpus/$name
	nseeds=0
	if [ -d "$seeds" ]; then
		cp -R "$seeds/." "$work/"
		nseeds=$(find "$seeds" -type f | wc -l)
	fi
	log=$out/$name.log
	echo "== $name: ${secs}s from $nseeds seeds"
	timeout -k 10 "$guard" "$bin" -max_total_time="$secs" \
	    -timeout="$per_input" -max_len="${FUZZ_MAX_LEN:-16384}" \
	    -rss_limit_mb=4096 -print_final_stats=1 \
	    -artifact_prefix="$out/$name-" "$work" >"$log" 2>&1
	rc=$?
	inputs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	corpus=$(find "$work" -type f | wc -l)
	# A clean run exits 0 and names no error; anything else is a failure,
	# whatever the exit status says.
	if [ "$rc" -eq 0 ] && [ -n "$inputs" ] &&
	    ! grep -qE '^==[0-9]+==ERROR|ERROR: libFuzzer|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$log"; then
		echo "ok   $name: ${inputs} inputs (${rate}/s), corpus $nseeds -> $corpus files"
		passed=$((passed + 1))
	else
		echo "FAIL $name: exit $rc after ${inputs:-?} inputs; log $log"
		grep -E 'ERROR|SUMMARY|fuzz:|fuzz_stream:|Test unit written|runtime error' "$log" | head -n 20
		failed=$((failed + 1)); status=1
	fi
	rm -rf "$work"
done
echo "total: $passed passed, $failed failed"
exit $status
