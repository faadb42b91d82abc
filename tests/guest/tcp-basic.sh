#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (tests/guest/run-guest.sh): the kernel's NVMe/TCP
# host against nvemu on the guest's own loopback.
#
# The target is tests/guest/tcp-target.c (nvemu-tcp-target: the library's
# TCP target serving the seed-000 model plus a 64 MiB RAM namespace) until
# nvemud serves TCP listeners itself.
set -eu
NQN=nqn.2014-08.io.nvemu:default
SERIAL=NVEMU-TCP-GUEST1
HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:6e7a1c2b-8d3e-4f50-9a61-7b8c9d0e1f23
HOSTID=6e7a1c2b-8d3e-4f50-9a61-7b8c9d0e1f23
fail() { echo "FAIL: $*"; cat /tmp/tgt.log 2>/dev/null; exit 1; }

nvemu-tcp-target -a 127.0.0.1 -s 4420 -n "$NQN" -S "$SERIAL" -m 64 > /tmp/tgt.log 2>&1 &
for i in $(seq 50); do grep -q ready /tmp/tgt.log && break; sleep 0.1; done
grep -q ready /tmp/tgt.log || fail "target did not start"

echo "== nvme discover"
nvme discover -t tcp -a 127.0.0.1 -s 4420 --hostnqn="$HOSTNQN" --hostid="$HOSTID" | tee /tmp/disc
grep -q "subnqn: *$NQN" /tmp/disc || fail "discovery log does not list $NQN"

echo "== nvme connect"
nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" --hostnqn="$HOSTNQN" --hostid="$HOSTID" ||
	fail "nvme connect"
ctrl=
dev=
for i in $(seq 100); do
	for c in /sys/class/nvme/nvme*; do
		[ -e "$c/subsysnqn" ] && grep -qx "$NQN" "$c/subsysnqn" && ctrl=$(basename "$c")
	done
	for b in /sys/block/nvme*; do
		[ -e "$b/size" ] && [ "$(cat "$b/size")" = 131072 ] && dev=/dev/$(basename "$b")
	done
	[ -n "$ctrl" ] && [ -n "$dev" ] && [ -b "$dev" ] && break
	sleep 0.1
done
[ -n "$ctrl" ] || fail "no controller for $NQN"
[ -n "$dev" ] || fail "no 64 MiB namespace block device"
echo "controller $ctrl, fio device $dev"

echo "== nvme id-ctrl"
nvme id-ctrl "/dev/$ctrl" | tee /tmp/idctrl | head -n 20
grep -q "^sn *: *$SERIAL" /tmp/idctrl || fail "serial $SERIAL not in id-ctrl"
grep -q "^subnqn *: *$NQN" /tmp/idctrl || fail "subnqn not in id-ctrl"
nvme list

echo "== fio verify"
fio --name=verify --filename="$dev" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
	--iodepth=32 --size=16M --verify=crc32c --do_verify=1 --verify_fatal=1 \
	--randrepeat=0 || fail "fio verify"

echo "== nvme disconnect"
nvme disconnect -n "$NQN" || fail "nvme disconnect"

echo "== header and data digests: the data written above is still there"
nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" --hostnqn="$HOSTNQN" --hostid="$HOSTID" \
	--hdr-digest --data-digest || fail "nvme connect with digests"
for i in $(seq 100); do [ -b "$dev" ] && break; sleep 0.1; done
fio --name=verify-again --filename="$dev" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
	--iodepth=32 --size=16M --verify=crc32c --verify_only=1 --verify_fatal=1 \
	--randrepeat=0 || fail "data lost across reconnect"
fio --name=verify-digest --filename="$dev" --ioengine=libaio --direct=1 --rw=randwrite \
	--bs=128k --iodepth=8 --size=16M --verify=crc32c --do_verify=1 --verify_fatal=1 \
	|| fail "fio verify with digests"
nvme disconnect -n "$NQN" || fail "nvme disconnect"
echo PASS
