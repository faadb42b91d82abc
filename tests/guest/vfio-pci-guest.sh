#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest of tests/guest/vfio-pci-run.sh: binds QEMU's NVMe
# controller to vfio-pci and drives it with nvemu's host driver: first
# vfio-pci-io (data round trips with SGLs, nosgl, INTx and polling), then
# nvemud attaches it (bdev_nvme_attach_controller --trtype pcie), exports the
# namespace over NVMe/TCP on the guest's loopback, and the kernel's NVMe/TCP
# host runs fio verify against it: with SGLs, nosgl, nomsix and nointr. TAP.
. "$(dirname "$0")/lib.sh"
NQV=nqn.2024-01.io.nvemu:vfio-export
PORT=4421

# No interrupt remapping under TCG: type 1 must be told to accept that.
while read -r ko; do
	case $ko in
	*vfio_iommu_type1*) insmod "$ko" allow_unsafe_interrupts=1 ;;
	*) insmod "$ko" ;;
	esac
done </etc/vfio-modules.order

bdf=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/class")" = 0x010802 ] && bdf=$(basename "$d")
done
[ -n "$bdf" ] || bail "QEMU's NVMe controller is on the bus"
ok "QEMU's NVMe controller is at $bdf"
if [ -e "/sys/bus/pci/devices/$bdf/iommu_group" ]; then
	ok "it has an IOMMU group ($(basename "$(readlink "/sys/bus/pci/devices/$bdf/iommu_group")"))"
else
	dmesg | grep -i -E "dmar|iommu" | tail -n 5 >$OUT
	bail "it has an IOMMU group (intel-iommu active)"
fi
echo vfio-pci >"/sys/bus/pci/devices/$bdf/driver_override"
echo "$bdf" >/sys/bus/pci/drivers_probe
[ "$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")")" = vfio-pci ] ||
	bail "bound to vfio-pci"
ok "bound to vfio-pci"

# io NAME ARGS...: one vfio-pci-io run, its lines as comments.
io() {
	_name=$1
	shift
	if timeout 120 vfio-pci-io "$@" "$bdf" >$OUT 2>&1; then
		diag $OUT
		ok "$_name"
	else
		dmesg | tail -n 5 >>$OUT
		diag $OUT
		nok "$_name"
	fi
}
io "vfio-pci-io: MSI-X, SGLs where the controller has them"
io "vfio-pci-io: MSI-X, nosgl (PRP lists)" -s
io "vfio-pci-io: INTx (nomsix), nosgl" -x -s
io "vfio-pci-io: polling, no interrupts" -p
io "vfio-pci-io: MSI-X again (reset and re-init after the other runs)"

# ---- nvemud drives it and serves it over NVMe/TCP to the kernel's host
fio_verify() {
	fio --ioengine=libaio --direct=1 --rw=randwrite --iodepth=16 --numjobs=2 --size=4M \
		--offset_increment=4M --verify=crc32c --verify_fatal=1 --do_verify=1 \
		--group_reporting --filename="$1" --name=small --bs=4k --offset=0 \
		--name=large --bs=128k --offset=8M
}

# export NAME ARGS...: attach with ARGS, serve over TCP, kernel host + fio, tear down.
export_round() {
	_name=$1
	shift
	rpc bdev_nvme_attach_controller --name QN --trtype pcie --traddr "$bdf" --num_io_queues 2 \
		"$@" >$OUT 2>&1
	if grep -q "not in this build" $OUT; then
		# src/driver/transports.c lists the transports nvemud has
		ok "# SKIP nvemud has no pcie host transport in its table ($_name)"
		return 0
	fi
	grep -q QNn1 $OUT || { nok "$_name: bdev_nvme_attach_controller --trtype pcie"; return 0; }
	ok "$_name: bdev_nvme_attach_controller --trtype pcie gives QNn1"
	t "$_name: subsystem, namespace on QNn1, listener :$PORT" sh -c "
		nvemu-rpc nvme_subsystem_create --nqn $NQV --serial_number VFIOEXP1 &&
		nvemu-rpc nvme_namespace_create --nqn $NQV --bdev_name QNn1 --nsid 1 &&
		nvemu-rpc nvmf_subsystem_add_listener --nqn $NQV --trtype tcp --traddr 127.0.0.1 \
			--trsvcid $PORT --adrfam ipv4 &&
		nvemu-rpc nvmf_subsystem_allow_any_host --nqn $NQV --allow_any_host true"
	t "$_name: the kernel host connects" nvme connect -t tcp -a 127.0.0.1 -s $PORT -n $NQV \
		--hostnqn="$HOSTNQN" --hostid="$HOSTID"
	wait_ns 1 || { nok "$_name: namespace 1 appears"; return 0; }
	dev=$(ns_dev 1)
	t "$_name: fio verify on $dev (4 KiB and 128 KiB random writes, crc32c)" fio_verify "$dev"
	nvme disconnect -n $NQV >/dev/null 2>&1
	wait_ns 1 gone
	t "$_name: teardown (subsystem, detach)" sh -c "
		nvemu-rpc nvme_subsystem_destroy --nqn $NQV --force true &&
		nvemu-rpc bdev_nvme_detach_controller --name QN"
}

start_nvemud -l none -m none -u none || bail "nvemud starts"
ok "nvemud starts"
export_round "SGLs, MSI-X"
export_round "nosgl" --nosgl true
export_round "nomsix (INTx)" --nomsix true
export_round "nointr (polling)" --nointr true
stop_nvemud
[ "$STOP_RC" = 0 ] && ok "nvemud stops cleanly" || nok "nvemud stops cleanly ($STOP_RC)"
finish
