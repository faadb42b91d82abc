#!/bin/sh
# A longer fuzzing campaign: every libFuzzer target for FUZZ_SECONDS
# (default 300) each, one after the other, each starting from its committed
# seeds (tests/fuzz/corpus/<target>/) plus what earlier campaigns found
# (BUILD/fuzz-long/<target>/corpus). Prints a table of executions and
# coverage (cov: code edges, ft: features, from libFuzzer's final status
# line) per target; exits 1 if any target had a finding (run-fuzzer.sh
# prints the saved input and a reproducer).
#
# usage: tests/fuzz/fuzz-long.sh [BUILD_DIR]     (make fuzz-long FUZZ_SECONDS=N)
set -u
cd "$(dirname "$0")/../.."
build=${1:-build-fuzz}
secs=${FUZZ_SECONDS:-300}
status=0
table=""
for seeds in tests/fuzz/corpus/*/; do
	name=$(basename "$seeds")
	exe=$build/tests/fuzz/$name
	if [ ! -x "$exe" ]; then
		echo "fuzz-long: $exe not built (ninja -C $build)" >&2
		status=1
		continue
	fi
	echo "=== $name: $secs s" >&2
	out=$(tests/fuzz/run-fuzzer.sh "$exe" "$secs" "$build/fuzz-long/$name" "$seeds")
	rc=$?
	printf '%s\n' "$out" | grep -v '^# fuzz-stats' >&2
	stats=$(printf '%s\n' "$out" | sed -n 's/^# fuzz-stats //p')
	runs=$(printf '%s\n' "$stats" | sed -n 's/.* runs=\([0-9]*\).*/\1/p')
	cov=$(printf '%s\n' "$stats" | sed -n 's/.* cov=\([0-9]*\).*/\1/p')
	ft=$(printf '%s\n' "$stats" | sed -n 's/.* ft=\([0-9]*\).*/\1/p')
	corp=$(printf '%s\n' "$stats" | sed -n 's/.* corpus=\([0-9]*\).*/\1/p')
	result=ok
	[ $rc -eq 0 ] || { result=FINDING; status=1; }
	table="$table$(printf '| %s | %s | %s | %s | %s | %s | %s |' "$name" "$secs" \
		"${runs:-0}" "${cov:-0}" "${ft:-0}" "${corp:-0}" "$result")
"
done
echo "| target | seconds | executions | cov | ft | corpus | result |"
echo "|---|---:|---:|---:|---:|---:|---|"
printf '%s' "$table"
exit $status
