#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (tests/ceph/rbd-vfu.sh through run-vfu-guest.sh): the
# Linux nvme PCI driver on nvemu's controller over vfio-user, whose
# namespace 17 is an RBD image in the host's Ceph cluster. fio writes and
# verifies through it; 1 MiB of random data written at 80 MiB is printed as
# "MD5 <sum>" for the host to compare with `rbd export`.
set -u
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
finish() {
	echo "1..$n"
	[ "$failed" = 0 ] || { dmesg | grep -i nvme | tail -n 20; exit 1; }
	exit 0
}

while read -r ko; do insmod "$ko" 2>/dev/null || true; done < /vfu/modules.order

# The RBD namespace: the block device whose nsid is 17.
dev=
for _ in $(seq 300); do
	for b in /sys/block/nvme*n*; do
		case ${b##*/} in nvme*c*n*) continue ;; esac
		[ "$(cat "$b/nsid" 2>/dev/null)" = 17 ] && [ -b "/dev/${b##*/}" ] && dev=/dev/${b##*/}
	done
	[ -n "$dev" ] && break
	sleep 0.1
done
[ -n "$dev" ] || { nok "namespace 17 (RBD) is a block device"; finish; }
ok "namespace 17 (RBD image) is $dev, $(($(cat /sys/block/${dev#/dev/}/size) / 2048)) MiB"

if fio --name=r4k --filename="$dev" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
	--iodepth=32 --offset=0 --size=16M --verify=crc32c --verify_fatal=1 --randrepeat=1 \
	--output=/tmp/fio1; then
	ok "fio 4 KiB randwrite QD32 + verify (16 MiB)"
else
	cat /tmp/fio1
	nok "fio 4 KiB randwrite QD32 + verify (16 MiB)"
fi
if fio --name=s128k --filename="$dev" --ioengine=libaio --direct=1 --rw=write --bs=128k \
	--iodepth=8 --offset=32M --size=32M --verify=crc32c --verify_fatal=1 --output=/tmp/fio2; then
	ok "fio 128 KiB write QD8 + verify (32 MiB)"
else
	cat /tmp/fio2
	nok "fio 128 KiB write QD8 + verify (32 MiB)"
fi
if fio --name=z --filename="$dev" --ioengine=libaio --direct=1 --rw=trim --bs=1M \
	--offset=64M --size=4M --output=/tmp/fio3 2>/dev/null ||
	blkdiscard -o $((64 << 20)) -l $((4 << 20)) "$dev" 2>/dev/null; then
	z=$(dd if="$dev" bs=1M skip=64 count=4 iflag=direct 2>/dev/null | tr -d '\0' | wc -c)
	[ "$z" = 0 ] && ok "deallocated 4 MiB reads back as zeroes" ||
		nok "deallocated 4 MiB reads back as zeroes ($z non-zero bytes)"
fi
# Write Zeroes (nvme-cli) over 1 MiB of random data at 72 MiB: RBD write-zeroes.
lbs=$(cat /sys/block/${dev#/dev/}/queue/logical_block_size)
dd if=/dev/urandom of="$dev" bs=1M seek=72 count=1 oflag=direct conv=fsync 2>/dev/null
if nvme write-zeroes "$dev" --start-block=$((72 * 1048576 / lbs)) \
	--block-count=$((1048576 / lbs - 1)) >/tmp/wz 2>&1; then
	z=$(dd if="$dev" bs=1M skip=72 count=1 iflag=direct 2>/dev/null | tr -d '\0' | wc -c)
	[ "$z" = 0 ] && ok "Write Zeroes: 1 MiB reads back as zeroes" ||
		nok "Write Zeroes: 1 MiB reads back as zeroes ($z non-zero bytes)"
else
	cat /tmp/wz
	nok "nvme write-zeroes"
fi
dd if=/dev/urandom of=/tmp/rand bs=1M count=1 2>/dev/null
if dd if=/tmp/rand of="$dev" bs=1M seek=80 count=1 oflag=direct conv=fsync 2>/dev/null; then
	echo "MD5 $(md5sum < /tmp/rand | cut -d' ' -f1)"
	ok "1 MiB of random data written at 80 MiB"
else
	nok "1 MiB of random data written at 80 MiB"
fi
finish
