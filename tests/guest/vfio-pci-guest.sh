#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest of tests/guest/vfio-pci-run.sh: binds QEMU's NVMe
# controller to vfio-pci and drives it with nvemu's host driver
# (vfio-pci-io) with SGLs, with nosgl, with INTx (nomsix) and polling. TAP.
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }

# No interrupt remapping under TCG: type 1 must be told to accept that.
while read -r ko; do
	case $ko in
	*vfio_iommu_type1*) insmod "$ko" allow_unsafe_interrupts=1 ;;
	*) insmod "$ko" ;;
	esac
done < /etc/vfio-modules.order

bdf=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/class")" = 0x010802 ] && bdf=$(basename "$d")
done
if [ -n "$bdf" ]; then ok "QEMU's NVMe controller is at $bdf"; else nok "no NVMe controller"; fi
if [ -e "/sys/bus/pci/devices/$bdf/iommu_group" ]; then
	ok "it has an IOMMU group ($(basename "$(readlink "/sys/bus/pci/devices/$bdf/iommu_group")"))"
else
	nok "no IOMMU group: intel-iommu not active"
	dmesg | grep -i -E "dmar|iommu" | tail -n 5 | sed 's/^/# /'
fi
echo vfio-pci > "/sys/bus/pci/devices/$bdf/driver_override"
echo "$bdf" > /sys/bus/pci/drivers_probe
if [ "$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")")" = vfio-pci ]; then
	ok "bound to vfio-pci"
else
	nok "not bound to vfio-pci"
	dmesg | tail -n 10 | sed 's/^/# /'
fi

# run NAME ARGS...: one vfio-pci-io run, its lines as comments, one result line.
run() {
	name=$1
	shift
	if timeout 120 vfio-pci-io "$@" "$bdf" > /tmp/io.out 2>&1; then
		sed 's/^/# /' /tmp/io.out
		ok "$name"
	else
		sed 's/^/# /' /tmp/io.out
		dmesg | tail -n 5 | sed 's/^/# dmesg: /'
		nok "$name"
	fi
}
run "MSI-X, SGLs where the controller has them"
run "MSI-X, nosgl (PRP lists)" -s
run "INTx (nomsix), nosgl" -x -s
run "polling, no interrupts" -p
run "MSI-X again after the other runs (reset and re-init)"
echo "1..$n"
[ "$failed" -eq 0 ]
