#!/bin/sh
# Proves that the fuzz harness fails the run on every kind of finding: the
# deliberately broken target fuzz-selftest, run through run-fuzzer.sh with
# a seed that crashes, overflows, aborts, leaks, hangs or exhausts memory,
# must make run-fuzzer.sh exit 1 (never 0, never 77 = SKIP) with TAP
# "not ok", the input saved and a reproducer printed; and with the target
# disarmed the same run passes.
#
# usage: selftest.sh RUN_FUZZER FUZZ_SELFTEST WORKDIR
set -u
runner=$1; target=$2; work=$3
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }

rm -rf "$work"
mkdir -p "$work" || exit 1
work=$(cd "$work" && pwd)

# one CASE KIND|0 [ARMED]: run the target on a one-file seed corpus CASE; expect a
# failure with a KIND-* input saved, or (0) a pass.
one() {
	case_=$1; want=$2; armed=${3:-1}
	mkdir -p "$work/seeds-$case_"
	printf '%s' "$case_" >"$work/seeds-$case_/input"
	# Only the hang needs the short per-input timeout; the rest must be caught by their own check.
	to=30
	[ "$case_" = HANG ] && to=2
	NVEMU_FUZZ_SELFTEST=$armed FUZZ_TIMEOUT=$to FUZZ_RSS_LIMIT_MB=512 \
		"$runner" "$target" 3 "$work/run-$case_" "$work/seeds-$case_" \
		>"$work/$case_.out" 2>"$work/$case_.err"
	rc=$?
	if [ "$want" = 0 ]; then
		if [ $rc -eq 0 ] && grep -q '^ok 1 ' "$work/$case_.out"; then
			ok "disarmed target: run-fuzzer.sh passes (exit 0, TAP ok)"
		else
			nok "disarmed target: run-fuzzer.sh passes (got exit $rc)"
			sed 's/^/# /' "$work/$case_.out" "$work/$case_.err" | tail -n 20
		fi
		return
	fi
	input=$(sed -n 's/^# input: //p' "$work/$case_.out" | head -n 1)
	kind=${input##*/}
	kind=${kind%%-*}
	if [ $rc -eq 1 ] && grep -q '^not ok 1 ' "$work/$case_.out" && [ -n "$input" ] &&
		[ -s "$input" ] && grep -q "^# reproduce: .*$input" "$work/$case_.out" &&
		[ "$kind" = "$want" ]; then
		ok "$case_: run-fuzzer.sh fails (exit 1, TAP not ok), input saved as ${input##*/}"
	else
		nok "$case_: run-fuzzer.sh fails with a $want input saved (got exit $rc, input '$input')"
		sed 's/^/# /' "$work/$case_.out" | tail -n 10
		sed 's/^/# /' "$work/$case_.err" | tail -n 20
	fi
}

# Each case and the kind of finding libFuzzer names its saved input after.
one CRASH crash
one UB crash
one ABORT crash
one LEAK leak
one HANG timeout
one OOM oom
one CLEAN 0 0

# The saved crash input, replayed by the printed reproducer, crashes again.
input=$(sed -n 's/^# input: //p' "$work/CRASH.out" | head -n 1)
if [ -n "$input" ] && ! NVEMU_FUZZ_SELFTEST=1 "$target" "$input" >"$work/repro.log" 2>&1 &&
	grep -q 'heap-buffer-overflow' "$work/repro.log"; then
	ok "the reproducer command replays the crash (heap-buffer-overflow)"
else
	nok "the reproducer command replays the crash"
	tail -n 10 "$work/repro.log" 2>/dev/null | sed 's/^/# /'
fi
echo "1..$n"
[ $failed -eq 0 ]
