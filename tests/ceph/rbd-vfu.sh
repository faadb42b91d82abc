#!/bin/sh
# SPDX-License-Identifier: MIT
# The Linux kernel as the host of an RBD namespace: nvemud runs on the host
# next to the Ceph cluster (tests/ceph/cluster.sh) and serves a PCIe
# controller over vfio-user to a QEMU 11 guest (tests/vfio-user/run-vfu-guest.sh,
# which the guest reaches over a unix socket, no network needed); the
# controller's namespace 17 is an RBD image. In the guest the nvme PCI driver
# binds it and fio writes and verifies (tests/ceph/vfu-rbd-guest.sh); then the
# 1 MiB of random data the guest wrote at 80 MiB must be what `rbd export`
# of the image holds there.
#   rbd-vfu.sh BUILD_DIR
. "$(dirname "$0")/../daemon/lib.sh"
. "$(dirname "$0")/lib.sh"

build=${1:?usage: rbd-vfu.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
ceph_start || exit 1
check "96 MiB image rbd/vfu" ceph_image vfu 96M

RBD_VFU_CONF=$C/ceph.conf NVEMU_VFU_SETUP=$here/vfu-setup.sh \
	"$here/../vfio-user/run-vfu-guest.sh" "$build" "$here/vfu-rbd-guest.sh" 1 >"$T/guest.out" 2>&1
GRC=$?
sed 's/^/# /' "$T/guest.out" | grep -v "^# *$" | tail -n 60
check "the guest's checks pass (fio verify through the kernel's nvme PCI driver)" [ $GRC -eq 0 ]
SUM=$(sed -n 's/.*MD5 \([0-9a-f]\{32\}\).*/\1/p' "$T/guest.out" | tail -n 1)
check "the guest reported the sum of its random data" [ -n "$SUM" ]
check "rbd export" cx rbd export rbd/vfu "$T/vfu.img"
HSUM=$(dd if="$T/vfu.img" bs=1M skip=80 count=1 2>/dev/null | md5sum | cut -d' ' -f1)
diag "guest $SUM, rbd export $HSUM"
check "rbd export holds the guest's data at 80 MiB" [ "$SUM" = "$HSUM" ]
