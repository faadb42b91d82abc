#!/bin/sh
# SPDX-License-Identifier: MIT
#
# PCIe NVMe benchmark (issue 6): in one QEMU (TCG) guest, fio on nvemu's
# controller served by nvemud over vfio-user (a 64 MiB RAM namespace) and on
# QEMU's own emulated NVMe device (-device nvme on a raw image on tmpfs, fio
# on its first 64 MiB): 4 KiB random read at depth 1 and 32, 128 KiB
# sequential read at depth 8, 4 KiB random write at depth 32. Prints both
# sides and the ratio nvemu/QEMU per workload (results in
# bench/README-vfio-user.md).
#
#   bench/vfio-user-vs-qemu-nvme.sh BUILD_DIR
#
# Environment: NVEMU_BENCH_RUNTIME (s per fio run, default 5),
# NVEMU_BENCH_RAMP (s, default 1). The guest, the trixie QEMU with
# vfio-user and nvemud come from tests/vfio-user/run-vfu-guest.sh.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
runtime=${NVEMU_BENCH_RUNTIME:-5}
ramp=${NVEMU_BENCH_RAMP:-1}

shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm=${TMPDIR:-/tmp}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nvemu-vfu-bench.XXXXXX")
img=$(mktemp "$shm/nvemu-vfu-bench-img.XXXXXX")
trap 'rm -rf "$tmp" "$img"' EXIT
truncate -s 96M "$img"

{
	echo "RUNTIME=$runtime"
	echo "RAMP=$ramp"
	cat "$src/bench/guest-vfu-bench.sh"
} > "$tmp/guest.sh"

export NVEMU_VFU_QEMU_EXTRA="-drive file=$img,if=none,id=qnvme,format=raw,cache=writeback,aio=threads -device nvme,serial=QEMUNVME1,drive=qnvme"
export NVEMU_GUEST_TIMEOUT=${NVEMU_GUEST_TIMEOUT:-600}
"$src/tests/vfio-user/run-vfu-guest.sh" "$build" "$tmp/guest.sh" 1 > "$tmp/out" 2>&1 || {
	cat "$tmp/out" >&2
	exit 1
}
grep -q '^bench done' "$tmp/out" || { cat "$tmp/out" >&2; exit 1; }

chroot_dir=$("$src/tests/vfio-user/setup-trixie.sh" 2>/dev/null) || chroot_dir=
qver=$(sed -n '/^Package: qemu-system-x86$/,/^$/s/^Version: //p' \
	"$chroot_dir/var/lib/dpkg/status" 2>/dev/null | head -n 1)
echo "guest: QEMU ${qver:-?} (TCG, 2 vCPUs), fio ${runtime}s per run after ${ramp}s ramp, one job, libaio, direct"
printf '%-20s %12s %12s %12s %12s %7s\n' workload "nvemu IOPS" "nvemu MiB/s" "QEMU IOPS" "QEMU MiB/s" ratio
for j in randread-4k-qd1 randread-4k-qd32 seqread-128k-qd8 randwrite-4k-qd32; do
	set -- $(sed -n "s/^BENCH nvemu $j \([0-9]*\) \([0-9]*\).*/\1 \2/p" "$tmp/out" | tr -d '\r') x x
	ni=$1 nb=$2
	set -- $(sed -n "s/^BENCH qemu $j \([0-9]*\) \([0-9]*\).*/\1 \2/p" "$tmp/out" | tr -d '\r') x x
	qi=$1 qb=$2
	awk -v j="$j" -v ni="$ni" -v nb="$nb" -v qi="$qi" -v qb="$qb" 'BEGIN {
		printf "%-20s %12s %12.1f %12s %12.1f %7.2f\n", j, ni, nb / 1024, qi, qb / 1024,
			(qi > 0 ? ni / qi : 0) }'
done
