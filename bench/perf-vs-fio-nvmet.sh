#!/bin/sh
# SPDX-License-Identifier: MIT
#
# nvemu-perf against the Linux kernel NVMe/TCP target (nvmet-tcp on null_blk,
# memory_backed=1) in a QEMU (TCG) guest, next to fio through the kernel's
# NVMe/TCP host against the same target: 4 KiB randread QD1/QD32, 4 KiB
# randwrite QD32, 128 KiB seqread QD8, both figures and their ratio, as a
# sanity check of the generator.
#
#   bench/perf-vs-fio-nvmet.sh BUILD_DIR
#
# Environment: NVEMU_BENCH_RUNTIME (s per run, default 8), NVEMU_BENCH_SIZE_MB
# (null_blk size, default 256), NVEMU_GUEST_TIMEOUT (default 600),
# NVEMU_GUEST_CACHE (run-guest.sh's base image cache).
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
[ -x "$build/src/perf/nvemu-perf" ] ||
	{ echo "$0: $build/src/perf/nvemu-perf missing (ninja -C $build)" >&2; exit 1; }
script=$(mktemp "${TMPDIR:-/tmp}/nvemu-bench.XXXXXX")
trap 'rm -f "$script"' EXIT
{
	echo "RUNTIME=${NVEMU_BENCH_RUNTIME:-8}"
	echo "SIZE_MB=${NVEMU_BENCH_SIZE_MB:-256}"
	cat "$src/bench/guest-perf-vs-fio.sh"
} > "$script"
NVEMU_GUEST_TIMEOUT=${NVEMU_GUEST_TIMEOUT:-600} "$src/tests/guest/nvmet-run.sh" "$build" "$script"
