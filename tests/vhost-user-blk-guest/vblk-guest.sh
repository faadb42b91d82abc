#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (run-vblk-guest.sh with host-nvemud.sh): the Linux
# virtio_blk driver against nvemud's virtio-blk exports over vhost-user-blk.
#
# Disks are told apart by serial (GET_ID). VBLK-A (command line): size,
# block size, serial, two queues, fio write+verify (crc32c, 4 KiB and
# 128 KiB, depth 32, two jobs), data written over NVMe/TCP reads back,
# discard and write zeroes reach the namespace (counters, zeroes). VBLK-B: a
# GPT partition by UUID, exactly its size and data. VBLK-C: read-only.
# VBLK-E: created over RPC and hotplugged, then unplugged and destroyed.
# VBLK-D: nvemud restarts under a running write; QEMU reconnects, the write
# completes and the data is intact.
#
# One TAP line per check; the host is reached through ttyS3 (see
# run-vblk-guest.sh): host NAME ARGS sets RC and OUT (blanks removed).
set -u
n=0
failed=0
T0=$(date +%s)
ok() { n=$((n + 1)); echo "ok $n - $* [$(($(date +%s) - T0))s]"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $* [$(($(date +%s) - T0))s]"; }
check() { _d=$1; shift; if "$@" >/tmp/out 2>&1; then ok "$_d"; else nok "$_d"; tail -n 8 /tmp/out | sed 's/^/# /'; fi; }

stty -F /dev/ttyS3 -echo -icrnl -onlcr 2>/dev/null
exec 5<>/dev/ttyS3
hostcall() {
	RC=255
	OUT=
	echo "$*" >&5
	line=
	IFS= read -r -t 120 line <&5 || true
	line=$(printf '%s' "$line" | tr -d '\r')
	case $line in
	"RC "*) line=${line#RC }; RC=${line%% *}; OUT=${line#* } ;;
	esac
	[ "$RC" = 0 ]
}
host() { hostcall "@@HOST $*"; }
# jnum KEY: the integer value of "KEY" in OUT
jnum() { printf '%s' "$OUT" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }

# dev_of SERIAL: /dev/vdX whose serial is SERIAL
dev_of() {
	for b in /sys/block/vd*; do
		[ "$(cat "$b/serial" 2>/dev/null)" = "$1" ] && [ -b "/dev/${b##*/}" ] &&
			{ echo "/dev/${b##*/}"; return 0; }
	done
	return 1
}
# wait_dev SERIAL [gone]: up to 30 s
wait_dev() {
	for _ in $(seq 300); do
		if [ "${2:-}" = gone ]; then dev_of "$1" >/dev/null || return 0
		else dev_of "$1" >/dev/null && return 0; fi
		sleep 0.1
	done
	return 1
}
sysb() { cat "/sys/block/${1#/dev/}/$2"; }

while read -r ko; do insmod "$ko" 2>/dev/null; done < /vblk/modules.order
for s in VBLK-A VBLK-B VBLK-C VBLK-D; do
	check "disk $s appears (serial from GET_ID)" wait_dev $s
done
A=$(dev_of VBLK-A)
B=$(dev_of VBLK-B)
C=$(dev_of VBLK-C)
D=$(dev_of VBLK-D)
[ -n "$A" ] && [ -n "$B" ] && [ -n "$C" ] && [ -n "$D" ] || { echo "1..$n"; exit 1; }

# ---- VBLK-A: the whole namespace 16 (64 MiB RAM), named SN:n16 on the command line
check "A: 64 MiB (131072 sectors)" test "$(sysb $A size)" = 131072
check "A: 512-byte logical blocks" test "$(sysb $A queue/logical_block_size)" = 512
check "A: num-queues=2 gives two blk-mq queues" test "$(ls /sys/block/${A#/dev/}/mq | wc -l)" = 2
check "A: writable" test "$(sysb $A ro)" = 0
check "A: fio write+verify crc32c, 4 KiB, QD32, 2 jobs" \
	fio --name=v4k --filename=$A --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
	--iodepth=32 --numjobs=2 --offset_increment=16M --size=8M --verify=crc32c \
	--verify_fatal=1 --do_verify=1 --randrepeat=0
check "A: fio write+verify crc32c, 128 KiB, QD32, 2 jobs" \
	fio --name=v128k --filename=$A --ioengine=libaio --direct=1 --rw=write --bs=128k \
	--iodepth=32 --numjobs=2 --offset_increment=32M --size=16M --verify=crc32c \
	--verify_fatal=1 --do_verify=1
# NVMe/TCP (nvemud's listener on the host's loopback) writes 64 blocks at LBA 2048.
if host tcp_write 16 2048 64; then
	want=$OUT
	got=$(dd if=$A bs=512 skip=2048 count=64 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
	check "A: data written over NVMe/TCP reads back identically" test "$got" = "$want"
else
	nok "A: NVMe/TCP write on the host: $OUT"
fi
# Discard and write zeroes reach the namespace: counted, and the range reads zeroes.
dd if=/dev/urandom of=/tmp/r bs=1M count=2 2>/dev/null
dd if=/tmp/r of=$A bs=1M seek=40 oflag=direct 2>/dev/null
host list --ctrl VblkCtrl4
d0=$(jnum discards)
z0=$(jnum write_zeroes)
check "A: discard_max_bytes > 0 (VIRTIO_BLK_F_DISCARD)" test "$(sysb $A queue/discard_max_bytes)" -gt 0
check "A: blkdiscard" /vblk/bin/blkdiscard -o $((40 << 20)) -l $((1 << 20)) $A
check "A: blkdiscard -z (write zeroes)" /vblk/bin/blkdiscard -z -o $((41 << 20)) -l $((1 << 20)) $A
head -c $((2 << 20)) /dev/zero > /tmp/z
dd if=$A of=/tmp/back bs=1M skip=40 count=2 iflag=direct 2>/dev/null
check "A: discarded and zeroed ranges read zeroes" cmp /tmp/back /tmp/z
host list --ctrl VblkCtrl4
check "A: the export counted the discard ($d0 before, $(jnum discards) after)" \
	test "$(jnum discards)" -gt "${d0:-0}"
check "A: the export counted the write zeroes ($z0 before, $(jnum write_zeroes) after)" \
	test "$(jnum write_zeroes)" -gt "${z0:-0}"

# ---- VBLK-B: GPT partition 2 of namespace 17 by UUID: 16384 sectors from sector 8192
check "B: exactly the partition's size (16384 sectors)" test "$(sysb $B size)" = 16384
check "B: its first sector is the partition's" \
	sh -c "dd if=$B bs=512 count=1 iflag=direct 2>/dev/null | grep -q NVEMU-P2-FIRST"
check "B: its last sector is the partition's" \
	sh -c "dd if=$B bs=512 skip=16383 count=1 iflag=direct 2>/dev/null | grep -q NVEMU-P2-LAST"
check "B: nothing past the partition (reading there gives 0 bytes)" \
	test "$(dd if=$B bs=512 skip=16384 count=1 iflag=direct 2>/dev/null | wc -c)" = 0

# ---- VBLK-C: read-only export of namespace 16
check "C: the guest sees a read-only disk (ro=1)" test "$(sysb $C ro)" = 1
blockdev --setrw $C 2>/dev/null
dd if=/dev/zero of=$C bs=4096 count=1 oflag=direct 2>/dev/null
check "C: a forced write fails" test $? != 0
dd if=$A of=/tmp/a1 bs=4096 skip=512 count=1 iflag=direct 2>/dev/null
dd if=$C of=/tmp/c1 bs=4096 skip=512 count=1 iflag=direct 2>/dev/null
check "C: reads the namespace A writes" cmp /tmp/a1 /tmp/c1

# ---- VBLK-E: created over RPC and hotplugged, then unplugged and destroyed
if host hotplug_add; then
	check "E: created over RPC and hotplugged: appears" wait_dev VBLK-E
	E=$(dev_of VBLK-E)
	check "E: whole namespace 17 (32 MiB)" test "$(sysb ${E:-none} size)" = 65536
	host hotplug_del
	check "E: unplugged: disappears" wait_dev VBLK-E gone
	check "E: destroyed over RPC: no longer listed" host hotplug_destroy
else
	nok "E: hotplug: $OUT"
fi

# ---- VBLK-D: nvemud restarts under a running write; QEMU reconnects
dd if=/dev/urandom of=/tmp/pat bs=1M count=16 2>/dev/null
(dd if=/tmp/pat of=$D bs=4k oflag=direct 2>/tmp/dd.err; echo $? > /tmp/dd.rc) &
ddpid=$!
sleep 0.5
check "D: the write is running when nvemud is restarted" kill -0 $ddpid
check "D: nvemud restarted on the host" host restart
wait $ddpid
check "D: the write running across the restart completed" test "$(cat /tmp/dd.rc)" = 0
cat /tmp/dd.err | sed 's/^/# /'
dd if=$D of=/tmp/back bs=1M count=16 iflag=direct 2>/dev/null
check "D: its data is intact (nothing in flight was lost)" cmp /tmp/pat /tmp/back
check "A: reconnected too: reads work" dd if=$A of=/dev/null bs=4096 count=16 iflag=direct

# ---- namespace 17 destroyed under VBLK-B: its I/O fails, never stale data
check "B: reads before its namespace goes" dd if=$B of=/dev/null bs=4096 count=1 iflag=direct
check "namespace 17 destroyed over RPC (its export detached)" host ns_destroy 17
dd if=$B of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null
check "B: reads fail once the namespace is gone" test $? != 0
host list --ctrl VblkCtrl1
check "B: listed as detached" sh -c "printf '%s' '$OUT' | grep -q '\"attached\":false'"

echo "1..$n"
[ $failed = 0 ]
