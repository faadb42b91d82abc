#!/bin/sh
# Runs a libFuzzer target for a bounded time as a TAP test. New inputs go
# to a scratch corpus in the build tree; the committed seeds are read only
# and replayed first, so every crash input ever committed runs every time.
#
# usage: run-fuzzer.sh FUZZER SECONDS WORKDIR [SEED_DIR]
# FUZZ_TIMEOUT (seconds per input, default 10) and FUZZ_RSS_LIMIT_MB
# (default 2048) override libFuzzer's limits (tests/fuzz/selftest.sh).
#
# Any finding is a failure, never a skip: libFuzzer's own exit codes (77 for
# a crash or leak, 70 a timeout, 71 out of memory) would read as SKIP or be
# indistinguishable from a clean run to meson, so they are all mapped to 1,
# and an input left in the artifacts directory fails the run even if the
# process somehow exited 0. The saved input's path and a reproducer command
# are printed.
#
# Prints a summary line "# fuzz-stats NAME runs=N cov=N ft=N corpus=N secs=N"
# (tests/fuzz/fuzz-long.sh collects them).
set -u
if [ $# -lt 3 ]; then
	echo "usage: $0 FUZZER SECONDS WORKDIR [SEED_DIR]" >&2
	exit 2
fi
fuzzer=$1; secs=$2; work=$3; seeds=${4:-}
name=$(basename "$fuzzer")
echo "1..1"
fail() {
	echo "not ok 1 - $name: $*"
	exit 1
}
[ -x "$fuzzer" ] || fail "$fuzzer is not an executable libFuzzer target"
if [ -n "$seeds" ] && [ ! -d "$seeds" ]; then
	fail "seed directory $seeds does not exist"
fi
mkdir -p "$work/corpus" "$work/artifacts" || fail "cannot create $work"
# Absolute paths: a target may chdir (fuzz-jsonrpc works in a private directory).
work=$(cd "$work" && pwd)
[ -n "$seeds" ] && seeds=$(cd "$seeds" && pwd)
case $fuzzer in /*) ;; *) fuzzer=$(pwd)/$fuzzer ;; esac
# Findings of an earlier run were reported then; only this run's count.
rm -f "$work/artifacts/"*
log=$work/fuzz.log

# Per-input timeout 10 s, 2 GiB RSS (the machine is shared); leaks are
# detected by LeakSanitizer (-detect_leaks=1 is the default).
set -- "$fuzzer" -max_total_time="$secs" -rss_limit_mb="${FUZZ_RSS_LIMIT_MB:-2048}" \
	-timeout="${FUZZ_TIMEOUT:-10}" \
	-error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/" "$work/corpus"
[ -n "$seeds" ] && set -- "$@" "$seeds"
# The sanitizer runtimes must report on stderr (libFuzzer reads the report
# to name the artifact), and must not recover from UBSan findings.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=stderr:detect_leaks=1" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=stderr:halt_on_error=1:print_stacktrace=1" \
	"$@" >"$log" 2>&1
rc=$?

# The last status line: "#N DONE cov: C ft: F corp: K/..." (or the last pulse/NEW line).
last=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 1)
runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
[ -n "$runs" ] || runs=$(printf '%s\n' "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
echo "# fuzz-stats $name runs=${runs:-0} cov=${cov:-0} ft=${ft:-0} corpus=${corp:-0} secs=$secs"

found=$(find "$work/artifacts" -type f | sort)
if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
	echo "ok 1 - $name: ${runs:-0} runs in $secs s, cov ${cov:-0} ft ${ft:-0}, no finding"
	exit 0
fi

# A finding: the fuzzer's report on stderr, the inputs and how to replay them.
{
	echo "=== $name: exit status $rc; fuzzer log $log (last lines):"
	tail -n 80 "$log"
} >&2
echo "not ok 1 - $name: fuzzer exit status $rc, $(printf '%s\n' "$found" | grep -c .) input(s) saved"
if [ -z "$found" ]; then
	echo "# no input saved (the fuzzer died outside an input); log: $log"
fi
for f in $found; do
	echo "# input: $f"
	echo "# reproduce: $fuzzer $f"
	known=
	if [ -n "$seeds" ]; then
		for s in "$seeds"/*; do
			[ -f "$s" ] && cmp -s "$f" "$s" && known=$s && break
		done
	fi
	if [ -n "$known" ]; then
		echo "# this is the committed seed $known (a known finding, not fixed yet)"
	else
		echo "# keep as a regression seed: cp $f tests/fuzz/corpus/$name/"
	fi
done
exit 1
