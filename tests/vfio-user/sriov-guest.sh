#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (tests/vfio-user/run-vfu-guest.sh with
# NVEMU_VFU_SRIOV=1): a PF and its VF as two vfio-user PCI functions.
#
# The PF's controller (opened by the SNAP seed's sequence with --pf_id 0)
# binds with its namespace; it is a primary controller: nvme-cli's
# primary-ctrl-caps and list-secondary show the pools and the VF's secondary
# controller, Offline — the driver could not enable it. virt-mgmt assigns it
# VQ and VI resources and brings it Online; the control plane's view
# (nvme_controller_list: num_msix, online) agrees; the nvme driver then binds
# the VF and fio verifies its namespace; the VF's I/O shows in its iostat.
# Last, the SNAP hot-unplug sequence removes the VF.
set -u
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
fail() {
	nok "$*"
	dmesg | grep -i nvme | tail -n 20
	echo "1..$n"
	exit 1
}
finish() {
	echo "1..$n"
	[ "$failed" = 0 ] || { dmesg | grep -i nvme | tail -n 20; exit 1; }
	exit 0
}

# ---- RPC through the host (see vfu-guest.sh)
stty -F /dev/ttyS3 -echo -icrnl -onlcr 2>/dev/null
exec 5<>/dev/ttyS3
rpc() {
	RPC_RC=255
	RPC_OUT=
	echo "@@RPC $*" >&5
	line=
	IFS= read -r -t 60 line <&5 || true
	line=$(printf '%s' "$line" | tr -d '\r')
	case $line in
	"RC "*)
		line=${line#RC }
		RPC_RC=${line%% *}
		RPC_OUT=${line#* }
		;;
	esac
	[ "$RPC_RC" = 0 ]
}
jval() { printf '%s' "$RPC_OUT" | sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p"; }

while read -r ko; do insmod "$ko" 2>/dev/null || true; done < /vfu/modules.order

# ctrl_of CNTLID: the nvme controller (nvmeN) with that controller ID
ctrl_of() {
	for c in /sys/class/nvme/nvme*; do
		[ -e "$c/cntlid" ] && [ "$(cat "$c/cntlid")" = "$1" ] && { basename "$c"; return 0; }
	done
	return 1
}
blkdev_of_size() {
	for b in /sys/block/nvme*n*; do
		case ${b##*/} in nvme*c*n*) continue ;; esac
		[ -e "$b/size" ] && [ "$(cat "$b/size")" = "$1" ] && [ -b "/dev/${b##*/}" ] &&
			{ echo "/dev/${b##*/}"; return 0; }
	done
	return 1
}
wait_for() {
	for _ in $(seq 300); do
		"$@" >/dev/null && return 0
		sleep 0.1
	done
	return 1
}
# field NAME FILE: the number after "NAME ... :" in nvme-cli's normal output (hex or decimal)
field() {
	v=$(grep -i -m1 "^ *$1 " "$2" | sed 's/.*: *\([0-9a-fA-Fx]*\).*/\1/')
	[ -n "$v" ] && printf '%d' "$v"
}

wait_for ctrl_of 1 || fail "the nvme driver binds the PF's controller (cntlid 1)"
pf=$(ctrl_of 1)
wait_for blkdev_of_size 131072 || fail "the PF's namespace (the seed's, 64 MiB) is a block device"
ok "the PF's controller binds as $pf with the seed's namespace $(blkdev_of_size 131072)"

# The VF's controller is Offline: its probe failed (CSTS.RDY never came) and it is not bound.
sleep 9 # the driver waits CAP.TO (7.5 s) for the VF before giving up
if ctrl_of 2 >/dev/null; then
	nok "the Offline VF's controller is not bound"
else
	ok "the Offline VF's controller is not bound"
fi
vf_bdf=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/class")" = 0x010802 ] || continue
	[ -e "$d/driver" ] && continue
	vf_bdf=${d##*/}
done
[ -n "$vf_bdf" ] || fail "the VF is a PCI function without a driver"
ok "the VF is PCI function $vf_bdf, unbound"

nvme primary-ctrl-caps "/dev/$pf" > /tmp/caps 2>&1 || { cat /tmp/caps; fail "nvme primary-ctrl-caps"; }
cat /tmp/caps
[ "$(field vqfrt /tmp/caps)" = 32 ] && [ "$(field vifrt /tmp/caps)" = 32 ] &&
	[ "$(field crt /tmp/caps)" = 3 ] &&
	ok "primary-ctrl-caps: VQ and VI pools of 32" || nok "primary-ctrl-caps: VQ and VI pools of 32"
nvme list-secondary "/dev/$pf" > /tmp/sec 2>&1 || { cat /tmp/sec; fail "nvme list-secondary"; }
cat /tmp/sec
[ "$(field NUMID /tmp/sec)" = 1 ] && [ "$(field SCID /tmp/sec)" = 2 ] &&
	[ "$(field SCS /tmp/sec)" = 0 ] && [ "$(field VFN /tmp/sec)" = 1 ] &&
	ok "list-secondary: secondary 2 (VF 1), Offline" || nok "list-secondary: secondary 2 (VF 1), Offline"
nvme virt-mgmt "/dev/$pf" -c 2 -a 9 > /tmp/vm 2>&1 &&
	nok "virt-mgmt online without resources is refused" ||
	ok "virt-mgmt online without resources is refused: $(tr '\n' ' ' < /tmp/vm)"
nvme virt-mgmt "/dev/$pf" -c 2 -r 0 -a 8 -n 3 > /tmp/vm 2>&1 && cat /tmp/vm &&
	nvme virt-mgmt "/dev/$pf" -c 2 -r 1 -a 8 -n 3 >> /tmp/vm 2>&1 &&
	ok "virt-mgmt assigns 3 VQ and 3 VI resources" ||
	{ cat /tmp/vm; nok "virt-mgmt assigns 3 VQ and 3 VI resources"; }
nvme virt-mgmt "/dev/$pf" -c 2 -a 9 > /tmp/vm 2>&1 && ok "virt-mgmt brings the secondary online" ||
	{ cat /tmp/vm; nok "virt-mgmt brings the secondary online"; }
nvme list-secondary "/dev/$pf" > /tmp/sec 2>&1
[ "$(field SCS /tmp/sec)" = 1 ] && [ "$(field NVQ /tmp/sec)" = 3 ] &&
	[ "$(field NVI /tmp/sec)" = 3 ] &&
	ok "list-secondary: Online, NVQ 3, NVI 3" || { cat /tmp/sec; nok "list-secondary: Online, NVQ 3, NVI 3"; }
if rpc nvme_controller_list -c NVMeCtrl3; then
	[ "$(jval num_msix)" = 3 ] && [ "$(jval num_vq)" = 3 ] && [ "$(jval online)" = true ] &&
		ok "nvme_controller_list of the VF agrees: num_msix 3, num_vq 3, online" ||
		nok "nvme_controller_list of the VF agrees ($RPC_OUT)"
else
	nok "nvme_controller_list -c NVMeCtrl3 ($RPC_OUT)"
fi
rpc nvme_controller_modify -c NVMeCtrl3 --num_msix 2 &&
	nok "num_msix of an Online VF is refused" || ok "num_msix of an Online VF is refused"

# ---- the driver binds the VF now
echo "$vf_bdf" > /sys/bus/pci/drivers/nvme/bind 2>/tmp/bind || true
wait_for ctrl_of 2 || { cat /tmp/bind; fail "the nvme driver binds the Online VF (cntlid 2)"; }
vf=$(ctrl_of 2)
wait_for blkdev_of_size 65536 || fail "the VF's namespace (32 MiB) is a block device"
dev=$(blkdev_of_size 65536)
ok "the VF binds as $vf with namespace $dev"
nvme get-feature "/dev/$vf" -f 7 -H > /tmp/nq 2>&1
grep -q "Number of IO Completion Queues Allocated (NCQA): 2" /tmp/nq &&
	ok "Number of Queues: 2 I/O queues (3 VQs less the admin pair)" ||
	{ cat /tmp/nq; nok "Number of Queues: 2 I/O queues (3 VQs less the admin pair)"; }
if fio --name=vf --filename="$dev" --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
	--iodepth=16 --size=16M --verify=crc32c --verify_fatal=1 --numjobs=2 --offset_increment=16M --eta=never \
	--output=/tmp/fio; then
	ok "fio verify on the VF's namespace"
else
	cat /tmp/fio
	nok "fio verify on the VF's namespace"
fi
if rpc nvme_controller_iostat -c NVMeCtrl3; then
	w=$(printf '%s' "$RPC_OUT" | sed -n 's/.*"write_io_count":\([0-9]*\).*/\1/p') # the total: last
	[ "${w:-0}" -ge 8192 ] && printf '%s' "$RPC_OUT" | grep -q '"core_id":0' &&
		ok "the VF's iostat counts the writes ($w), core_id 0" ||
		nok "the VF's iostat counts the writes ($RPC_OUT)"
else
	nok "nvme_controller_iostat -c NVMeCtrl3"
fi

# ---- SNAP's hot-unplug of the VF: the guest lets go, then the function goes
rpc emulation_function_list && vuid=$(printf '%s' "$RPC_OUT" | sed -n 's/.*"vuid":"\([^"]*VF1\)".*/\1/p')
rpc nvme_controller_detach_ns -c NVMeCtrl3 -n 2 && ok "detach_ns of the VF's namespace" ||
	nok "detach_ns ($RPC_OUT)"
rpc emulation_device_detach_prepare --vuid "$vuid" && ok "emulation_device_detach_prepare $vuid" ||
	nok "emulation_device_detach_prepare ($RPC_OUT)"
echo 1 > "/sys/bus/pci/devices/$vf_bdf/remove"
wait_for sh -c "! [ -e /sys/class/nvme/$vf ]" && ok "the guest removed the VF's device" ||
	nok "the guest removed the VF's device"
rpc nvme_controller_destroy -c NVMeCtrl3 && ok "nvme_controller_destroy of the VF's controller" ||
	nok "nvme_controller_destroy ($RPC_OUT)"
rpc emulation_device_detach --vuid "$vuid" && ok "emulation_device_detach" ||
	nok "emulation_device_detach ($RPC_OUT)"
# The PF carries on.
dd if="$(blkdev_of_size 131072)" of=/dev/null bs=4096 count=64 iflag=direct 2>/dev/null &&
	ok "the PF's namespace still reads" || nok "the PF's namespace still reads"
finish
