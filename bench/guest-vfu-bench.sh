#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest of bench/vfio-user-vs-qemu-nvme.sh (through
# tests/vfio-user/run-vfu-guest.sh): the same fio jobs on nvemu's controller
# over vfio-user (the 64 MiB RAM namespace) and on QEMU's own -device nvme
# (serial QEMUNVME1, a 96 MiB image on tmpfs, fio on its first 64 MiB).
# RUNTIME and RAMP are set by the wrapper in front of this file. Prints
# "BENCH side job iops KiB/s".
set -u
RUNTIME=${RUNTIME:-5}
RAMP=${RAMP:-1}
fail() { echo "FAIL: $*"; exit 1; }

while read -r ko; do insmod "$ko" 2>/dev/null || true; done < /vfu/modules.order

# Told apart by size (multipath hides the namespaces under the subsystem):
# nvemu's is 64 MiB, QEMU's image 96 MiB.
nvemu=
qemu=
for i in $(seq 300); do
	for b in /sys/block/nvme*n*; do
		[ -e "$b/size" ] || continue
		case ${b##*/} in nvme*c*n*) continue ;; esac
		case $(cat "$b/size") in
		131072) nvemu=/dev/${b##*/} ;;
		196608) qemu=/dev/${b##*/} ;;
		esac
	done
	[ -n "$nvemu" ] && [ -n "$qemu" ] && [ -b "$nvemu" ] && [ -b "$qemu" ] && break
	sleep 0.1
done
[ -n "$nvemu" ] || fail "no nvemu namespace"
[ -n "$qemu" ] || fail "no QEMU nvme namespace"
echo "nvemu: $nvemu, qemu: $qemu"

for d in "$nvemu" "$qemu"; do
	dd if=/dev/zero of="$d" bs=1M count=64 oflag=direct 2>/dev/null || fail "prefill $d"
done

# job NAME RW BS DEPTH: fio --minimal (terse v3): read iops field 8, write iops 49,
# read KiB/s 7, write KiB/s 48.
job() {
	for side in nvemu qemu; do
		eval dev=\$$side
		out=$(fio --name="$1" --filename="$dev" --ioengine=libaio --direct=1 --rw="$2" \
			--bs="$3" --iodepth="$4" --size=64M --time_based --runtime="$RUNTIME" \
			--ramp_time="$RAMP" --norandommap --randrepeat=0 --minimal) ||
			fail "fio $1 on $dev"
		case $2 in
		*write) iops=$(echo "$out" | cut -d';' -f49); bw=$(echo "$out" | cut -d';' -f48) ;;
		*) iops=$(echo "$out" | cut -d';' -f8); bw=$(echo "$out" | cut -d';' -f7) ;;
		esac
		echo "BENCH $side $1 $iops $bw"
	done
}
job randread-4k-qd1 randread 4k 1
job randread-4k-qd32 randread 4k 32
job seqread-128k-qd8 read 128k 8
job randwrite-4k-qd32 randwrite 4k 32
echo "bench done"
