#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (tests/vfio-user/run-vfu-guest.sh): the Linux nvme
# PCI driver against nvemu's controller over vfio-user.
#
# First boot: the driver binds, id-ctrl/id-ns/smart-log/fw-log/get-feature
# show the model, fio writes and verifies (4 KiB random at depth 32, 128 KiB
# with two jobs), the data survives a controller reset, and a marker block is
# written. A later boot (a new QEMU reconnecting to the same server) finds
# the marker and verifies the first boot's data without writing it.
set -eu
SERIAL=NVEMU-VFU-GUEST1
MARK=NVEMU-VFU-PHASE1-DONE
fail() { echo "FAIL: $*"; dmesg | grep -i nvme | tail -n 20; exit 1; }

while read -r ko; do insmod "$ko" 2>/dev/null || true; done < /vfu/modules.order

ctrl=
dev=
for i in $(seq 300); do
	for c in /sys/class/nvme/nvme*; do
		[ -e "$c/serial" ] && grep -q "^$SERIAL" "$c/serial" && ctrl=$(basename "$c")
	done
	for b in /sys/block/nvme*n*; do
		[ -e "$b/size" ] && [ "$(cat "$b/size")" = 131072 ] && dev=/dev/$(basename "$b")
	done
	[ -n "$ctrl" ] && [ -n "$dev" ] && [ -b "$dev" ] && break
	sleep 0.1
done
[ -n "$ctrl" ] || fail "no nvme controller with serial $SERIAL"
[ -n "$dev" ] || fail "no 64 MiB namespace block device"
echo "controller $ctrl ($(cat /sys/class/nvme/$ctrl/transport)), fio device $dev"
grep -qx pcie "/sys/class/nvme/$ctrl/transport" || fail "transport is not pcie"
dmesg | grep -i 'nvme' | head -n 10

echo "== nvme id-ctrl"
nvme id-ctrl "/dev/$ctrl" > /tmp/idctrl || fail "id-ctrl"
head -n 12 /tmp/idctrl
grep -q "^sn *: *$SERIAL" /tmp/idctrl || fail "serial $SERIAL not in id-ctrl"
grep -q "^mdts" /tmp/idctrl || fail "no mdts in id-ctrl"
echo "== nvme id-ns / smart-log / fw-log / get-feature"
nvme id-ns "$dev" | grep -E '^(nsze|ncap|lbaf  0)' || fail "id-ns"
[ "$(nvme id-ns "$dev" | sed -n 's/^nsze *: *//p')" = 0x20000 ] || fail "nsze != 0x20000"
nvme smart-log "/dev/$ctrl" | head -n 6 || fail "smart-log"
nvme fw-log "/dev/$ctrl" | head -n 4 || fail "fw-log"
nvme get-feature "/dev/$ctrl" -f 7 || fail "get-feature number of queues"

v4k="--name=v4k --filename=$dev --ioengine=libaio --direct=1 --rw=randwrite --bs=4k
 --iodepth=32 --offset=0 --size=24M --verify=crc32c --verify_fatal=1 --randrepeat=1"
v128k="--name=v128k --filename=$dev --ioengine=libaio --direct=1 --rw=randwrite --bs=128k
 --iodepth=32 --offset=32M --size=12M --offset_increment=12M --numjobs=2
 --verify=crc32c --verify_fatal=1 --randrepeat=1"

mark=$(dd if="$dev" bs=4096 skip=16383 count=1 2>/dev/null | head -c ${#MARK})
if [ "$mark" = "$MARK" ]; then
	echo "== later boot: verify the first boot's data (reconnected controller)"
	# shellcheck disable=SC2086
	fio $v4k --verify_only --output=/tmp/fio1 || { cat /tmp/fio1; fail "verify 4k after reboot"; }
	# shellcheck disable=SC2086
	fio $v128k --verify_only --output=/tmp/fio2 || { cat /tmp/fio2; fail "verify 128k after reboot"; }
	echo "PASS: data of the previous guest verified"
	exit 0
fi

echo "== fio 4k randwrite + verify, depth 32"
# shellcheck disable=SC2086
fio $v4k --do_verify=1 --output=/tmp/fio1 || { cat /tmp/fio1; fail "fio 4k verify"; }
grep -E 'IOPS|err=' /tmp/fio1 | head -n 4
echo "== fio 128k randwrite + verify, depth 32, 2 jobs"
# shellcheck disable=SC2086
fio $v128k --do_verify=1 --output=/tmp/fio2 || { cat /tmp/fio2; fail "fio 128k verify"; }
grep -E 'IOPS|err=' /tmp/fio2 | head -n 4

echo "== controller reset"
echo 1 > "/sys/class/nvme/$ctrl/reset_controller" || fail "reset_controller"
for i in $(seq 200); do
	[ "$(cat /sys/class/nvme/$ctrl/state)" = live ] && break
	sleep 0.1
done
[ "$(cat /sys/class/nvme/$ctrl/state)" = live ] || fail "controller not live after reset"
# shellcheck disable=SC2086
fio $v4k --verify_only --output=/tmp/fio3 || { cat /tmp/fio3; fail "verify after reset"; }
echo "data verified after the controller reset"

printf '%s' "$MARK" | dd of="$dev" bs=4096 seek=16383 count=1 conv=sync 2>/dev/null ||
	fail "marker write"
sync
echo "PASS: first boot"
