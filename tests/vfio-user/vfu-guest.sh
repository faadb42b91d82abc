#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (tests/vfio-user/run-vfu-guest.sh): the Linux nvme
# PCI driver against nvemu's controller over vfio-user, served by nvemud.
#
# First boot: the driver binds, id-ctrl/id-ns/smart-log/fw-log/get-feature
# show the model, the controller's I/O counters over RPC match the I/O done
# here, fio writes and verifies (4 KiB random at depth 32, 128 KiB with two
# jobs), the data survives a controller reset, a namespace attached and
# detached over RPC appears and disappears (AEN), fw-download/fw-commit
# change the firmware revision, format changes the LBA format and
# create-ns/attach-ns create a namespace the daemon lists; then a marker
# block is written. A later boot (a new QEMU reconnecting to the same
# daemon) finds the marker and verifies the first boot's data.
#
# One TAP-style line per check; the script fails if any check failed.
# RPC goes through ttyS3 to run-vfu-guest.sh's watcher (see there).
set -u
MARK=NVEMU-VFU-PHASE1-DONE
NQN=nqn.2014-08.io.nvemu:default
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n - $* # SKIP no RPC (stand-alone server)"; }
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

# ---- RPC through the host: rpc METHOD ARGS... sets RPC_RC and RPC_OUT (blanks removed)
stty -F /dev/ttyS3 -echo -icrnl -onlcr 2>/dev/null
exec 5<>/dev/ttyS3
have_rpc=1
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
	[ "$RPC_RC" = 99 ] && have_rpc=
	[ "$RPC_RC" = 0 ]
}
# nsobj NSID: the object of that namespace in a (blank-free) nvme_namespace_list output
nsobj() { printf '%s' "$RPC_OUT" | sed 's/},{/}\n{/g' | grep "\"nsid\":$1,"; }
# jnum KEY: the last integer value of "KEY" in RPC_OUT (totals follow per-queue values).
jnum() { printf '%s' "$RPC_OUT" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }

while read -r ko; do insmod "$ko" 2>/dev/null || true; done < /vfu/modules.order

# blkdev_of_size SECTORS: the nvme block device of that size (512-byte sectors); not
# the hidden per-path devices (nvmeXcYnZ) of native multipath
blkdev_of_size() {
	for b in /sys/block/nvme*n*; do
		case ${b##*/} in nvme*c*n*) continue ;; esac
		[ -e "$b/size" ] && [ "$(cat "$b/size")" = "$1" ] && [ -b "/dev/${b##*/}" ] &&
			{ echo "/dev/${b##*/}"; return 0; }
	done
	return 1
}
# wait_for COND...: up to 20 s
wait_for() {
	for _ in $(seq 200); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

ctrl=
dev=
for i in $(seq 300); do
	for c in /sys/class/nvme/nvme*; do
		[ -e "$c/model" ] && grep -q "^nvemu" "$c/model" &&
			grep -qx pcie "$c/transport" && ctrl=$(basename "$c")
	done
	dev=$(blkdev_of_size 131072) || dev=
	[ -n "$ctrl" ] && [ -n "$dev" ] && [ -b "$dev" ] && break
	sleep 0.1
done
[ -n "$ctrl" ] || fail "the nvme driver binds an nvemu controller over PCIe"
[ -n "$dev" ] || fail "the 64 MiB namespace is a block device"
ok "the nvme driver binds $ctrl (pcie), 64 MiB namespace $dev"
dmesg | grep -i 'nvme' | head -n 10

mark=$(dd if="$dev" bs=4096 skip=16383 count=1 2>/dev/null | head -c ${#MARK})

v4k="--name=v4k --filename=$dev --ioengine=libaio --direct=1 --rw=randwrite --bs=4k
 --iodepth=32 --offset=0 --size=24M --verify=crc32c --verify_fatal=1 --randrepeat=1"
v128k="--name=v128k --filename=$dev --ioengine=libaio --direct=1 --rw=randwrite --bs=128k
 --iodepth=32 --offset=32M --size=12M --offset_increment=12M --numjobs=2
 --verify=crc32c --verify_fatal=1 --randrepeat=1"

if [ "$mark" = "$MARK" ]; then
	echo "== later boot: verify the first boot's data (reconnected controller)"
	# shellcheck disable=SC2086
	if fio $v4k --verify_only --output=/tmp/fio1 && fio $v128k --verify_only --output=/tmp/fio2; then
		ok "data of the previous guest verified (4 KiB and 128 KiB regions)"
	else
		cat /tmp/fio1 /tmp/fio2 2>/dev/null
		nok "data of the previous guest verified"
	fi
	finish
fi

# ---- identify and logs show the model
nvme id-ctrl "/dev/$ctrl" > /tmp/idctrl || fail "id-ctrl"
head -n 12 /tmp/idctrl
if grep -q "^mn *: *nvemu" /tmp/idctrl && grep -q "^mdts" /tmp/idctrl; then
	ok "id-ctrl shows the model (mn nvemu, mdts)"
else
	nok "id-ctrl shows the model"
fi
[ "$(nvme id-ns "$dev" | sed -n 's/^nsze *: *//p')" = 0x20000 ] && ok "id-ns: nsze 0x20000" ||
	nok "id-ns: nsze 0x20000"
nvme smart-log "/dev/$ctrl" > /tmp/smart && grep -q "temperature" /tmp/smart &&
	ok "smart-log" || nok "smart-log"
nvme fw-log "/dev/$ctrl" > /tmp/fwlog && grep -q "frs1" /tmp/fwlog && ok "fw-log" || nok "fw-log"
nvme get-feature "/dev/$ctrl" -f 7 > /tmp/feat 2>&1 && ok "get-feature number of queues" ||
	{ cat /tmp/feat; nok "get-feature number of queues"; }
cntlid=$(sed -n 's/^cntlid *: *//p' /tmp/idctrl)

# ---- the controller's I/O counters over RPC follow the guest's I/O
if rpc nvme_controller_iostat -c NVMeCtrl1; then
	r0=$(jnum read_io_count)
	w0=$(jnum write_io_count)
	dd if=/dev/urandom of=/tmp/rnd bs=4096 count=64 2>/dev/null
	dd if=/tmp/rnd of="$dev" bs=4096 seek=15000 count=64 oflag=direct 2>/dev/null
	dd if="$dev" of=/dev/null bs=4096 skip=15000 count=32 iflag=direct 2>/dev/null
	rpc nvme_controller_iostat -c NVMeCtrl1
	r1=$(jnum read_io_count)
	w1=$(jnum write_io_count)
	echo "iostat: reads $r0 -> $r1, writes $w0 -> $w1"
	[ $((w1 - w0)) = 64 ] && ok "iostat write_io_count grew by the 64 writes done" ||
		nok "iostat write_io_count grew by 64 (was $w0, now $w1)"
	[ $((r1 - r0)) = 32 ] && ok "iostat read_io_count grew by the 32 reads done" ||
		nok "iostat read_io_count grew by 32 (was $r0, now $r1)"
	rpc nvme_controller_debug_get -c NVMeCtrl1
	case $RPC_OUT in
	*'"driver_sq_tail"'*'"device_cq_tail"'*'"connected":true'*) ok "debug_get shows the PCIe queues" ;;
	*) nok "debug_get shows the PCIe queues: $RPC_OUT" ;;
	esac
elif [ -z "$have_rpc" ]; then
	skip "iostat write/read counts"
else
	nok "RPC nvme_controller_iostat: $RPC_RC $RPC_OUT"
fi

# ---- fio verify, controller reset
# shellcheck disable=SC2086
fio $v4k --do_verify=1 --output=/tmp/fio1 && ok "fio 4k randwrite + verify, depth 32" ||
	{ cat /tmp/fio1; nok "fio 4k randwrite + verify"; }
grep -E 'IOPS|err=' /tmp/fio1 | head -n 2
# ---- the doorbells went through shared memory, not messages
if rpc nvme_controller_debug_get -c NVMeCtrl1; then
	db=$(printf '%s' "$RPC_OUT" | sed -n 's/.*"doorbells":{\([^}]*\)}.*/\1/p')
	echo "doorbells: $db"
	dbnum() { printf '%s' "$db" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
	case $db in
	*'"mapped":true'*) ok "doorbell pages mapped by QEMU (sparse mmap area of BAR0)" ;;
	*) nok "doorbell pages mapped by QEMU: $db" ;;
	esac
	[ "$(dbnum mem_writes)" -gt 1000 ] 2>/dev/null &&
		ok "doorbell values found in shared memory: $(dbnum mem_writes) (messages: $(dbnum msg_writes))" ||
		nok "doorbell values found in shared memory: $db"
	case $db in
	*'"shadow":true'*) ok "the driver configured shadow doorbells (Doorbell Buffer Config)" ;;
	*) nok "the driver configured shadow doorbells: $db" ;;
	esac
	[ "$(dbnum shadow_updates)" -gt 100 ] 2>/dev/null &&
		ok "shadow doorbell values taken: $(dbnum shadow_updates)" ||
		nok "shadow doorbell values taken: $db"
elif [ -z "$have_rpc" ]; then
	skip "doorbells mapped and shadowed"
else
	nok "RPC nvme_controller_debug_get: $RPC_RC $RPC_OUT"
fi
# shellcheck disable=SC2086
fio $v128k --do_verify=1 --output=/tmp/fio2 && ok "fio 128k randwrite + verify, depth 32, 2 jobs" ||
	{ cat /tmp/fio2; nok "fio 128k randwrite + verify"; }
grep -E 'IOPS|err=' /tmp/fio2 | head -n 2

live() { [ "$(cat /sys/class/nvme/$ctrl/state)" = live ]; }

# ---- suspend, snapshot and resume over RPC while fio runs: I/O holds, then completes
if [ -n "$have_rpc" ]; then
	# shellcheck disable=SC2086
	fio $v4k --size=4M --offset=56M --runtime=20 --do_verify=1 --output=/tmp/fio4 &
	fpid=$!
	sleep 1
	srs=ok
	rpc nvme_controller_suspend -c NVMeCtrl1 --timeout_ms 10000 || srs="suspend: $RPC_OUT"
	rpc nvme_controller_snapshot_get -c NVMeCtrl1 -f @RUN@/snap.json || srs="$srs snapshot: $RPC_OUT"
	rpc nvme_controller_list -c NVMeCtrl1
	case $RPC_OUT in *'"suspended":true'*) ;; *) srs="$srs not suspended: $RPC_OUT" ;; esac
	sleep 1
	rpc nvme_controller_resume -c NVMeCtrl1 || srs="$srs resume: $RPC_OUT"
	if wait $fpid && [ "$srs" = ok ]; then
		ok "suspend + snapshot_get + resume during fio: fio verify passes"
	else
		cat /tmp/fio4
		nok "suspend + snapshot_get + resume during fio ($srs)"
	fi
else
	skip "suspend/snapshot/resume during I/O"
fi
echo 1 > "/sys/class/nvme/$ctrl/reset_controller" && wait_for live ||
	fail "controller live again after reset_controller"
# shellcheck disable=SC2086
fio $v4k --verify_only --output=/tmp/fio3 && ok "data verified after a controller reset" ||
	{ cat /tmp/fio3; nok "data verified after a controller reset"; }

# ---- namespace attach/detach over RPC: the guest sees it (Namespace Attribute Changed AEN)
ns2_there() { blkdev_of_size 2048 >/dev/null; }
ns2_gone() { ! ns2_there; }
if rpc nvme_controller_attach_ns -c NVMeCtrl1 -n 2; then
	wait_for ns2_there && ok "namespace 2 attached over RPC appears ($(blkdev_of_size 2048))" ||
		nok "namespace 2 attached over RPC appears"
	rpc nvme_controller_detach_ns -c NVMeCtrl1 -n 2 || nok "RPC detach: $RPC_OUT"
	wait_for ns2_gone && ok "namespace 2 detached over RPC disappears" ||
		nok "namespace 2 detached over RPC disappears"
elif [ -z "$have_rpc" ]; then
	skip "namespace attach/detach over RPC"
else
	nok "RPC nvme_controller_attach_ns: $RPC_RC $RPC_OUT"
fi

# ---- firmware download + commit changes the revision
printf 'NVEMU2.0' > /tmp/fw.img
dd if=/dev/zero bs=4088 count=1 >> /tmp/fw.img 2>/dev/null
nvme fw-download "/dev/$ctrl" -f /tmp/fw.img > /tmp/fwdl 2>&1 || { cat /tmp/fwdl; nok "fw-download"; }
nvme fw-commit "/dev/$ctrl" -s 2 -a 3 > /tmp/fwc 2>&1 || cat /tmp/fwc
sleep 0.5
wait_for live
fr() { nvme id-ctrl "/dev/$ctrl" | sed -n 's/^fr *: *//p' | tr -d ' '; }
if [ "$(fr)" != NVEMU2.0 ]; then
	# Activation at the next reset, if immediate activation is not offered.
	nvme fw-commit "/dev/$ctrl" -s 2 -a 1 >> /tmp/fwc 2>&1
	echo 1 > "/sys/class/nvme/$ctrl/reset_controller"
	wait_for live
fi
[ "$(fr)" = NVEMU2.0 ] && ok "fw-download + fw-commit: id-ctrl fr is NVEMU2.0" ||
	{ cat /tmp/fwc; nok "fw-download + fw-commit: id-ctrl fr is $(fr), not NVEMU2.0"; }

# ---- format namespace 1 (512 KiB) to 4 KiB blocks, with user data erase
dev1=$(blkdev_of_size 1024)
lbaf4k=$(nvme id-ns "$dev1" 2>/dev/null | sed -n 's/^lbaf *\([0-9]*\) *: *ms:0 *lbads:12 .*/\1/p' | head -n 1)
if [ -n "$dev1" ] && [ -n "$lbaf4k" ] &&
   nvme format "$dev1" --lbaf="$lbaf4k" --ses=1 --force > /tmp/fmt 2>&1; then
	ok "nvme format $dev1 --lbaf=$lbaf4k --ses=1"
	if rpc nvme_namespace_list --nqn $NQN; then
		case $(nsobj 1) in
		*'"block_size":4096'*) ok "RPC namespace list: nsid 1 now has 4096-byte blocks" ;;
		*) nok "RPC namespace list shows nsid 1 with 4096-byte blocks: $(nsobj 1)" ;;
		esac
	elif [ -z "$have_rpc" ]; then
		skip "format seen over RPC"
	else
		nok "RPC nvme_namespace_list: $RPC_OUT"
	fi
else
	cat /tmp/fmt 2>/dev/null
	nok "nvme format (dev1 '$dev1', 4 KiB lbaf '$lbaf4k')"
fi

# ---- create-ns + attach-ns from the guest
if nvme create-ns "/dev/$ctrl" --nsze=4096 --ncap=4096 --flbas=0 > /tmp/cns 2>&1; then
	nsid=$(sed -n 's/.*nsid:* *\([0-9]*\).*/\1/p' /tmp/cns | head -n 1)
	ok "nvme create-ns: nsid $nsid"
	nvme attach-ns "/dev/$ctrl" -n "$nsid" -c "$cntlid" > /tmp/ans 2>&1 &&
		ok "nvme attach-ns -n $nsid -c $cntlid" || { cat /tmp/ans; nok "nvme attach-ns"; }
	ns_new() { blkdev_of_size 4096 >/dev/null; }
	wait_for ns_new && ok "the new namespace is a block device" ||
		nok "the new namespace is a block device"
	if rpc nvme_namespace_list --nqn $NQN; then
		case $(nsobj "$nsid") in
		*'"num_blocks":4096'*'"controllers":["NVMeCtrl1"]'*)
			ok "RPC namespace list has nsid $nsid (4096 blocks) attached to NVMeCtrl1" ;;
		*) nok "RPC namespace list has nsid $nsid attached to NVMeCtrl1: $RPC_OUT" ;;
		esac
	elif [ -z "$have_rpc" ]; then
		skip "create-ns seen over RPC"
	else
		nok "RPC nvme_namespace_list: $RPC_OUT"
	fi
else
	cat /tmp/cns
	nok "nvme create-ns"
fi

printf '%s' "$MARK" | dd of="$dev" bs=4096 seek=16383 count=1 conv=sync 2>/dev/null ||
	nok "marker write"
sync
finish
