#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (tests/guest/nvmet-run.sh): nvemu-perf against the
# Linux kernel NVMe/TCP target (nvmet-tcp on null_blk memory_backed=1,
# 127.0.0.1:4421) next to the kernel's own NVMe/TCP host on the same
# namespace. Data written by nvemu-perf must read back identically through the
# kernel host (and match the null_blk device underneath), and data written by
# the kernel host must verify in nvemu-perf. 128 KiB writes make nvmet send one
# R2T for the whole transfer, answered with H2CData PDUs no larger than its
# MAXH2CDATA.
. "$(dirname "$0")/lib.sh"
KNQN=nqn.2014-08.io.nvemu:perf-nvmet
CFS=/sys/kernel/config
RANGE=$((4 * 1024 * 1024))
BLKS=$((RANGE / 4096))
TRID="trtype:tcp traddr:127.0.0.1 trsvcid:4421 subnqn:$KNQN"
perf() { nvemu-perf -r "$TRID" --hostnqn $HOSTNQN --range $RANGE "$@"; }

# ---- kernel target: null_blk through configfs, nvmet-tcp on 4421
while read -r ko; do
	case $ko in
	*/null_blk.ko) insmod "$ko" nr_devices=0 || bail "insmod $ko" ;;
	*) insmod "$ko" 2>/dev/null ;;
	esac
done < /etc/nvmet-modules.order
grep -q configfs /proc/mounts || mount -t configfs none $CFS || bail "mount configfs"
NB=$CFS/nullb/nullb0
mkdir $NB && echo 64 > $NB/size && echo 4096 > $NB/blocksize && echo 1 > $NB/memory_backed &&
	echo 1 > $NB/power || bail "null_blk setup"
for _i in $(seq 50); do [ -b /dev/nullb0 ] && break; sleep 0.1; done
[ -b /dev/nullb0 ] || bail "no /dev/nullb0"
S=$CFS/nvmet/subsystems/$KNQN
mkdir $S && echo 1 > $S/attr_allow_any_host && mkdir $S/namespaces/1 &&
	printf %s /dev/nullb0 > $S/namespaces/1/device_path &&
	echo 1 > $S/namespaces/1/enable || bail "nvmet subsystem"
P=$CFS/nvmet/ports/1
mkdir $P && echo tcp > $P/addr_trtype && echo ipv4 > $P/addr_adrfam &&
	echo 127.0.0.1 > $P/addr_traddr && echo 4421 > $P/addr_trsvcid &&
	ln -s $S $P/subsystems/$KNQN || bail "nvmet port"
ok "nvmet-tcp serves a null_blk namespace on 127.0.0.1:4421"

# ---- nvemu-perf writes, reads back and verifies (4 KiB and 128 KiB transfers)
t "nvemu-perf: 4 KiB sequential writes with --verify" \
	perf -w write -o 4096 -q 16 -N $BLKS --verify
t "nvemu-perf: 4 KiB random reads verify" perf -w randread -o 4096 -q 32 -N 2048 --verify
t "nvemu-perf: 128 KiB writes (one R2T per command) with --verify, seed 2" \
	perf -w write -o 131072 -q 8 -N $((RANGE / 131072)) --verify --seed 2
t "nvemu-perf: 4 KiB reads of the 128 KiB writes verify" \
	perf -w read -o 4096 -q 32 -N $BLKS --verify --seed 2
t "nvemu-perf: 128 KiB reads verify" perf -w randread -o 131072 -q 8 -N 64 --verify --seed 2

# ---- the kernel host reads the same LBAs
nvme connect -t tcp -a 127.0.0.1 -s 4421 -n $KNQN --hostnqn=$HOSTNQN --hostid=$HOSTID \
	>$OUT 2>&1 || bail "nvme connect to nvmet"
wait_ns 1 || bail "kernel namespace of nvmet"
DEV=$(ns_dev 1)
t "kernel host reads the range nvemu-perf wrote" \
	dd if=$DEV of=/tmp/k.bin bs=4096 count=$BLKS iflag=direct
dd if=/dev/nullb0 of=/tmp/n.bin bs=4096 count=$BLKS 2>/dev/null
t "kernel host's data equals the null_blk device's" cmp /tmp/k.bin /tmp/n.bin
# Block 37: its LBA (37 = 0x25) and the seed (2), little-endian, open each block.
hdr=$(od -An -tx1 -j $((37 * 4096)) -N 16 /tmp/k.bin | tr -s ' \n' ' ')
if [ "$hdr" = " 25 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 " ]; then
	ok "kernel host sees nvemu-perf's pattern (LBA, seed) in block 37"
else
	nok "kernel host sees nvemu-perf's pattern (LBA, seed) in block 37: '$hdr'"
fi

# ---- the reverse: the kernel host writes, nvemu-perf verifies
t "kernel host overwrites the range with zeros" \
	dd if=/dev/zero of=$DEV bs=65536 count=$((RANGE / 65536)) oflag=direct
nvemu-perf -r "$TRID" --hostnqn $HOSTNQN --range $RANGE -w read -o 4096 -q 8 -N 64 \
	--verify --seed 2 --quiet >$OUT 2>&1
rc=$?
if [ $rc -eq 1 ]; then ok "nvemu-perf reports the zeroed blocks as not verifying"
else nok "nvemu-perf reports the zeroed blocks as not verifying (exit $rc)"; fi
t "kernel host writes the pattern back" \
	dd if=/tmp/k.bin of=$DEV bs=65536 count=$((RANGE / 65536)) oflag=direct
t "nvemu-perf verifies every block the kernel host wrote" \
	perf -w read -o 4096 -q 32 -N $BLKS --verify --seed 2
t "nvemu-perf verifies the kernel host's data in 128 KiB reads" \
	perf -w read -o 131072 -q 8 -N $((RANGE / 131072)) --verify --seed 2

nvme disconnect -n $KNQN >/dev/null 2>&1
t "nvmet still serves nvemu-perf after the kernel host left" \
	perf -w randwrite -o 4096 -q 32 -N 2000 --verify --seed 3
finish
