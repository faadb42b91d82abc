#!/bin/sh
# Runs every test suite: the -Werror build, the same tests under
# ASan+UBSan, and the libFuzzer targets for a short time. Ends with a
# plain "N passed, N failed" line counting individual test cases.
set -u
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
status=0
logs=""

run_suite() { # name, build dir, meson test args...
	name=$1; dir=$2; shift 2
	echo "=== $name"
	if ! ninja -C "$dir" >"$dir.ninja.log" 2>&1; then
		cat "$dir.ninja.log"
		echo "not ok - $name: build failed" >>"$dir.buildfail"
		status=1
		return
	fi
	meson test -C "$dir" --num-processes "$JOBS" --print-errorlogs "$@" || status=1
	logs="$logs $dir/meson-logs/testlog.json"
}

rm -f build*.buildfail
[ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
run_suite "tests (-Werror)" build

[ -f build-asan/build.ninja ] || meson setup build-asan -Dwerror=true \
	-Db_sanitize=address,undefined -Db_lundef=false >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	# Guest and MI suites run unsanitized binaries (QEMU, nvme-cli with the AF_MCTP preload),
	# which cannot load ASan-instrumented libraries; their engine code is covered above.
	run_suite "tests (ASan+UBSan)" build-asan --no-suite guest --no-suite guest-vfio-user --no-suite mi

if [ -z "${NVEMU_NO_FUZZ:-}" ]; then
	[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fsanitize=fuzzer-no-link -Dc_link_args=-fsanitize=fuzzer-no-link >/dev/null
	run_suite "fuzzers (libFuzzer, ASan+UBSan)" build-fuzz --suite fuzz
fi

python3 tools/count-tests.py $logs build*.buildfail
rc=$?
[ $status -eq 0 ] && [ $rc -eq 0 ]
