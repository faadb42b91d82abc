#!/bin/sh
# SPDX-License-Identifier: MIT
#
# virtio-blk benchmark: one QEMU (TCG) guest with two vhost-user-blk disks
# side by side, nvemud's export of a 64 MiB RAM namespace and
# qemu-storage-daemon's vhost-user-blk export of a 64 MiB raw image on
# tmpfs, both with two queues. fio (libaio, direct, one job): 4 KiB random
# read at depth 1 and 32, 128 KiB sequential read at depth 8, 4 KiB random
# write at depth 32, each ROUNDS times with the order of the two sides
# alternating. Prints the mean of each side and the ratio nvemu/qsd.
#
#   bench/vblk-vs-qsd.sh BUILD_DIR
#
# Environment: NVEMU_BENCH_RUNTIME (s per fio run, default 5),
# NVEMU_BENCH_RAMP (s, default 1), NVEMU_BENCH_ROUNDS (default 3). The guest
# comes from tests/vhost-user-blk-guest/run-vblk-guest.sh.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
runtime=${NVEMU_BENCH_RUNTIME:-5}
ramp=${NVEMU_BENCH_RAMP:-1}
rounds=${NVEMU_BENCH_ROUNDS:-3}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nvemu-vblk-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
{
	echo "RUNTIME=$runtime"
	echo "RAMP=$ramp"
	echo "ROUNDS=$rounds"
	cat "$src/bench/guest-vblk-bench.sh"
} > "$tmp/guest.sh"

export NVEMU_GUEST_TIMEOUT=${NVEMU_GUEST_TIMEOUT:-1500}
"$src/tests/vhost-user-blk-guest/run-vblk-guest.sh" "$build" "$tmp/guest.sh" \
	"$src/bench/vblk-bench-host.sh" > "$tmp/out" 2>&1 || {
	cat "$tmp/out" >&2
	exit 1
}
grep -q '^bench done' "$tmp/out" || { cat "$tmp/out" >&2; exit 1; }

qver=$(qemu-system-x86_64 --version | sed -n '1s/.*version \([^ ]*\).*/\1/p')
echo "guest: QEMU $qver (TCG, 2 vCPUs), fio ${runtime}s per run after ${ramp}s ramp, one job, libaio, direct; mean of $rounds rounds, order alternating"
printf '%-20s %12s %12s %12s %12s %7s\n' workload "nvemu IOPS" "nvemu MiB/s" "qsd IOPS" "qsd MiB/s" ratio
for j in randread-4k-qd1 randread-4k-qd32 seqread-128k-qd8 randwrite-4k-qd32; do
	tr -d '\r' < "$tmp/out" | awk -v j="$j" '
		$1 == "BENCH" && $3 == j { n[$2]++; iops[$2] += $5; bw[$2] += $6 }
		END {
			if (!n["nvemu"] || !n["qsd"]) { printf "%-20s missing\n", j; exit }
			ni = iops["nvemu"] / n["nvemu"]; qi = iops["qsd"] / n["qsd"]
			printf "%-20s %12.0f %12.1f %12.0f %12.1f %7.2f\n", j, ni,
				bw["nvemu"] / n["nvemu"] / 1024, qi, bw["qsd"] / n["qsd"] / 1024,
				(qi > 0 ? ni / qi : 0) }'
done
