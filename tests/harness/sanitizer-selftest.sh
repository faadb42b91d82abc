#!/bin/sh
# Proves that a sanitizer report fails the test run: in this (ASan+UBSan)
# build, undefined behaviour, a heap overflow and a leak each kill the
# process with a non-zero status and a report, even with the runtime told
# to recover (the build must use -fno-sanitize-recover=all); under
# tests/run-all.sh the sanitizer options reach the tests and a report a
# process left in the report directory fails the run (check-reports.sh).
#
# usage: sanitizer-selftest.sh SANITIZER_TRIGGER CHECK_REPORTS WORKDIR
set -u
trigger=$1; check=$2; work=$3
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
rm -rf "$work"
mkdir -p "$work/reports" || exit 1

# dies KIND PATTERN DESC [extra UBSAN_OPTIONS]: the trigger must die, report
# PATTERN (into its own report directory, never the run's) and not go on.
dies() {
	kind=$1; pat=$2; desc=$3; extra=${4:-}
	rm -f "$work/reports/"*
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:log_path=$work/reports/asan" \
	UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1$extra:log_path=$work/reports/ubsan" \
		"$trigger" "$kind" >"$work/$kind.out" 2>"$work/$kind.err"
	rc=$?
	# GCC's libubsan writes to stderr whatever log_path says; ASan honours it.
	if [ $rc -ne 0 ] && ! grep -q survived "$work/$kind.out" &&
		cat "$work/$kind.err" "$work/reports/"* 2>/dev/null | grep -q "$pat"; then
		ok "$desc (exit status $rc)"
	else
		nok "$desc (exit status $rc)"
		cat "$work/$kind.out" "$work/$kind.err" "$work/reports/"* 2>/dev/null | sed 's/^/# /' |
			tail -n 20
	fi
}
dies ub "runtime error: signed integer overflow" "UBSan: signed overflow kills the process"
dies ub "runtime error: signed integer overflow" \
	"UBSan: still fatal with UBSAN_OPTIONS=halt_on_error=0 (built with -fno-sanitize-recover=all)" \
	":halt_on_error=0"
# UBSan's object-size check may see the overflow before ASan does: either kills it.
dies heap "heap-buffer-overflow\|insufficient space" "ASan/UBSan: a heap overflow kills the process"
dies leak "detected memory leaks" "LSan: a leak makes the process exit non-zero"

# check-reports.sh: a report fails, none passes.
mkdir -p "$work/none" "$work/some"
if "$check" "$work/none" >/dev/null; then
	ok "check-reports.sh passes an empty report directory"
else
	nok "check-reports.sh passes an empty report directory"
fi
cp "$work/reports/"* "$work/some/" 2>/dev/null
echo "==1==ERROR: LeakSanitizer: detected memory leaks" >"$work/some/asan.1"
if ! "$check" "$work/some" >"$work/check.out" 2>&1 && grep -q "detected memory leaks" "$work/check.out"; then
	ok "check-reports.sh fails on a report and prints it"
else
	nok "check-reports.sh fails on a report and prints it"
fi

# Under tests/run-all.sh the fatal options must have reached this test.
if [ -n "${NVEMU_RUN_ALL:-}" ]; then
	case ":${ASAN_OPTIONS:-}:" in
	*:detect_leaks=1:*abort_on_error=1:*log_path=*) ok "run-all.sh: ASAN_OPTIONS reached the test" ;;
	*) nok "run-all.sh: ASAN_OPTIONS reached the test (got '${ASAN_OPTIONS:-}')" ;;
	esac
	case ":${UBSAN_OPTIONS:-}:" in
	*:halt_on_error=1:*print_stacktrace=1:*log_path=*)
		ok "run-all.sh: UBSAN_OPTIONS reached the test" ;;
	*) nok "run-all.sh: UBSAN_OPTIONS reached the test (got '${UBSAN_OPTIONS:-}')" ;;
	esac
fi
echo "1..$n"
[ $failed -eq 0 ]
