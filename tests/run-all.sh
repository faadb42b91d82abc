#!/bin/sh
# Runs every test suite: the -Werror build, the same tests under
# ASan+UBSan, and the libFuzzer targets for a short time. Ends with a
# plain "N passed, N failed" line counting individual test cases.
#
# Any sanitizer report fails the run: the sanitized builds are compiled
# with -fno-sanitize-recover=all (meson.build adds it to every build with
# b_sanitize=undefined), every test process inherits ASAN_OPTIONS and
# UBSAN_OPTIONS that make a report fatal, and ASan/LSan reports go to files
# under build-asan/sanitizer-reports/, so that a report from a process whose
# exit status nobody checks (a daemon a shell test started in the
# background) still fails the run. (GCC's libubsan ignores log_path and
# reports on stderr; the process dies, so the test sees its daemon gone.)
# A skipped test fails the run too (tools/count-tests.py; NVEMU_ALLOW_SKIP=1
# accepts skips).
set -u
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
status=0
logs=""

run_suite() { # name, build dir, log name, meson test args...
	name=$1; dir=$2; logbase=$3; shift 3
	echo "=== $name"
	mkdir -p "$dir"
	if ! ninja -C "$dir" >"$dir/run-all-ninja.log" 2>&1; then
		cat "$dir/run-all-ninja.log"
		echo "not ok - $name: build failed" >>"$dir.buildfail"
		status=1
		return
	fi
	meson test -C "$dir" --num-processes "$JOBS" --print-errorlogs --logbase "$logbase" "$@" ||
		status=1
	logs="$logs $dir/meson-logs/$logbase.json"
}

rm -f build*.buildfail
[ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
run_suite "tests (-Werror)" build testlog

[ -f build-asan/build.ninja ] || meson setup build-asan -Dwerror=true \
	-Db_sanitize=address,undefined -Db_lundef=false \
	-Dc_args=-fno-sanitize-recover=all >/dev/null
reports=$PWD/build-asan/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
# Exported, so they reach every test and every process a test starts.
# log_path: an ASan/LSan report goes to reports/asan.PID (not to stderr);
# the process still dies with a non-zero status.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$reports/asan
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan
# NVEMU_RUN_ALL: tests/harness/sanitizer-selftest.sh checks these options reached it.
NVEMU_RUN_ALL=1
export ASAN_OPTIONS UBSAN_OPTIONS NVEMU_RUN_ALL
# Guest and MI suites run unsanitized binaries (QEMU, nvme-cli with the AF_MCTP preload),
# which cannot load ASan-instrumented libraries; their engine code is covered above.
# Sanitized processes start and exit (leak check) several times slower, and
# shell tests spawn hundreds of them: timeouts are tripled.
run_suite "tests (ASan+UBSan)" build-asan testlog --timeout-multiplier 3 --no-suite guest --no-suite guest-vfio-user --no-suite mi --no-suite package
# The destroy-under-load guest test also runs a sanitized nvemud (inside the
# guest, where the test checks its log), with the base image the -Werror run built.
NVEMU_GUEST_CACHE=${NVEMU_GUEST_CACHE:-$PWD/build/guest-cache}
export NVEMU_GUEST_CACHE
run_suite "guest destroy test (ASan+UBSan nvemud)" build-asan testlog-guest --timeout-multiplier 2 guest-tcp-destroy
# The virtio-blk guest test's nvemud runs on the host: the sanitized one serves QEMU there.
NVEMU_VBLK_CACHE=${NVEMU_VBLK_CACHE:-$PWD/build/vblk-cache}
export NVEMU_VBLK_CACHE
run_suite "guest virtio-blk test (ASan+UBSan nvemud)" build-asan testlog-guest-vblk --timeout-multiplier 2 guest-vblk
unset ASAN_OPTIONS UBSAN_OPTIONS NVEMU_RUN_ALL
if ! tests/harness/check-reports.sh "$reports"; then
	echo "not ok - sanitizer reports in $reports" >>build-asan.buildfail
	status=1
fi

# ThreadSanitizer (clang) on what runs on several threads: the event loop's
# messages and lock, and the NVMe/TCP suites with I/O queues on two reactors.
[ -f build-tsan/build.ninja ] || CC=clang meson setup build-tsan -Dwerror=true \
	-Db_sanitize=thread -Db_lundef=false >/dev/null
treports=$PWD/build-tsan/sanitizer-reports
rm -rf "$treports"
mkdir -p "$treports"
TSAN_OPTIONS=halt_on_error=1:exitcode=66:log_path=$treports/tsan
export TSAN_OPTIONS
run_suite "threads (TSan)" build-tsan testlog --timeout-multiplier 3 --suite tcp-reactors
unset TSAN_OPTIONS
if ! tests/harness/check-reports.sh "$treports"; then
	echo "not ok - sanitizer reports in $treports" >>build-tsan.buildfail
	status=1
fi

if [ -z "${NVEMU_NO_FUZZ:-}" ]; then
	# run-fuzzer.sh sets the sanitizer options libFuzzer needs and fails on any finding.
	[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args='-fsanitize=fuzzer-no-link -fno-sanitize-recover=all' \
		-Dc_link_args=-fsanitize=fuzzer-no-link >/dev/null
	run_suite "fuzzers (libFuzzer, ASan+UBSan)" build-fuzz testlog --suite fuzz
fi

python3 tools/count-tests.py $logs build*.buildfail
rc=$?
[ $status -eq 0 ] && [ $rc -eq 0 ]
