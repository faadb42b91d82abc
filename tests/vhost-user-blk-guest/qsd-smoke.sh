#!/bin/sh
# SPDX-License-Identifier: MIT
# Inside the guest (run-vblk-guest.sh with host-qsd.sh): the virtio_blk driver
# sees qemu-storage-daemon's 64 MiB disk with two queues, and data written
# reads back.
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
while read -r ko; do insmod "$ko" 2>/dev/null; done < /vblk/modules.order
for _ in $(seq 100); do [ -b /dev/vda ] && break; sleep 0.1; done
[ -b /dev/vda ] && ok "vda appears" || nok "vda appears"
[ "$(cat /sys/block/vda/size)" = 131072 ] && ok "64 MiB" || nok "64 MiB: $(cat /sys/block/vda/size)"
[ "$(ls /sys/block/vda/mq | wc -l)" = 2 ] && ok "two queues" || nok "two queues: $(ls /sys/block/vda/mq)"
dd if=/dev/urandom of=/tmp/p bs=4096 count=16 2>/dev/null
dd if=/tmp/p of=/dev/vda bs=4096 seek=100 oflag=direct 2>/dev/null
dd if=/dev/vda of=/tmp/q bs=4096 skip=100 count=16 iflag=direct 2>/dev/null
cmp -s /tmp/p /tmp/q && ok "data reads back" || nok "data reads back"
echo "1..$n"
[ $failed = 0 ]
