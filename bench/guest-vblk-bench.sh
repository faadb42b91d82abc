#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest of bench/vblk-vs-qsd.sh: the same fio jobs on
# nvemud's export (serial NVEMUVBLK) and qemu-storage-daemon's, ROUNDS times,
# the order of the two sides alternating per round. RUNTIME, RAMP and ROUNDS
# are set by the wrapper in front of this file. Prints
# "BENCH side job round iops KiB/s".
set -u
fail() { echo "FAIL: $*"; exit 1; }

while read -r ko; do insmod "$ko" 2>/dev/null || true; done < /vblk/modules.order
nvemu=
qsd=
for _ in $(seq 300); do
	for b in /sys/block/vd*; do
		[ -e "$b/size" ] || continue
		if [ "$(cat "$b/serial" 2>/dev/null)" = NVEMUVBLK ]; then nvemu=/dev/${b##*/}
		else qsd=/dev/${b##*/}; fi
	done
	[ -n "$nvemu" ] && [ -n "$qsd" ] && [ -b "$nvemu" ] && [ -b "$qsd" ] && break
	sleep 0.1
done
[ -n "$nvemu" ] || fail "no nvemu disk"
[ -n "$qsd" ] || fail "no qemu-storage-daemon disk"
echo "nvemu: $nvemu, qsd: $qsd"
for d in "$nvemu" "$qsd"; do
	dd if=/dev/zero of="$d" bs=1M count=64 oflag=direct 2>/dev/null || fail "prefill $d"
done

# one SIDE NAME RW BS DEPTH ROUND: fio --minimal (terse v3): read iops field 8,
# write iops 49, read KiB/s 7, write KiB/s 48.
one() {
	eval dev=\$$1
	out=$(fio --name="$2" --filename="$dev" --ioengine=libaio --direct=1 --rw="$3" \
		--bs="$4" --iodepth="$5" --size=64M --time_based --runtime="$RUNTIME" \
		--ramp_time="$RAMP" --norandommap --randrepeat=0 --minimal) || fail "fio $2 on $dev"
	case $3 in
	*write) iops=$(echo "$out" | cut -d';' -f49); bw=$(echo "$out" | cut -d';' -f48) ;;
	*) iops=$(echo "$out" | cut -d';' -f8); bw=$(echo "$out" | cut -d';' -f7) ;;
	esac
	echo "BENCH $1 $2 $6 $iops $bw"
}
job() {
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then
			one nvemu "$@" "$r"; one qsd "$@" "$r"
		else
			one qsd "$@" "$r"; one nvemu "$@" "$r"
		fi
	done
}
job randread-4k-qd1 randread 4k 1
job randread-4k-qd32 randread 4k 32
job seqread-128k-qd8 read 128k 8
job randwrite-4k-qd32 randwrite 4k 32
echo "bench done"
