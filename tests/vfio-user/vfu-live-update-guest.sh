#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (tests/vfio-user/run-vfu-guest.sh with
# NVEMU_VFU_NS_FILE=1): the Linux nvme PCI driver on nvemu's controller
# over vfio-user while the host replaces nvemud under it (@@LIVEUPDATE: a
# new nvemud --take-over, nvemud_live_update, resume --live_update). fio
# writes with verification across the update and must see no I/O error;
# the kernel must not have reset the controller or timed a command out;
# the data reads back verified afterwards, and RPC reaches the new daemon.
# Before the update nvme-cli reads an Identify Controller answered by the
# host's example admin command forwarder (turned on over RPC); after it,
# the new nvemud (which got the forwarding settings) does the same.
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

stty -F /dev/ttyS3 -echo -icrnl -onlcr 2>/dev/null
exec 5<>/dev/ttyS3
# host CMD...: send a request line to run-vfu-guest.sh's watcher; sets RC and OUT.
host() {
	RC=255
	OUT=
	echo "$*" >&5
	line=
	IFS= read -r -t 120 line <&5 || true
	line=$(printf '%s' "$line" | tr -d '\r')
	case $line in
	"RC "*)
		line=${line#RC }
		RC=${line%% *}
		OUT=${line#* }
		;;
	esac
	[ "$RC" = 0 ]
}

while read -r ko; do insmod "$ko" 2>/dev/null || true; done < /vfu/modules.order

dev=
ctrl=
for i in $(seq 300); do
	for c in /sys/class/nvme/nvme*; do
		[ -e "$c/model" ] && grep -q "^nvemu" "$c/model" && ctrl=$(basename "$c")
	done
	for b in /sys/block/nvme*n*; do
		[ -e "$b/size" ] && [ "$(cat "$b/size")" = 131072 ] && dev=/dev/${b##*/}
	done
	[ -n "$ctrl" ] && [ -n "$dev" ] && [ -b "$dev" ] && break
	sleep 0.1
done
[ -n "$dev" ] || fail "the nvme driver binds nvemu's controller, 64 MiB namespace"
ok "the nvme driver binds $ctrl, namespace $dev"

# ---- admin command forwarding seen by nvme-cli: Identify Controller answered by the
# host's example forwarder (it rewrites the model number)
idmn() { nvme id-ctrl "/dev/$ctrl" 2>/dev/null | sed -n 's/^mn *: *//p' | sed 's/ *$//'; }
if host "@@RPC nvme_controller_modify -c NVMeCtrl1 --admin_identify_cmd_fwd 0x1 --admin_cmd_fwd_socket @RUN@/fwd.sock"; then
	ok "forwarding of Identify CNS 1 turned on over RPC"
else
	nok "forwarding of Identify CNS 1 turned on over RPC: $OUT"
fi
mn=$(idmn)
[ "$mn" = "forwarded by example" ] && ok "nvme id-ctrl shows the forwarder's model number" ||
	nok "nvme id-ctrl shows the forwarder's model number (got '$mn')"
nvme id-ns "$dev" > /tmp/idns 2>&1 && grep -q "^nsze *: *0x20000" /tmp/idns &&
	ok "Identify Namespace (CNS 0, not forwarded) answered by nvemu" ||
	{ cat /tmp/idns; nok "Identify Namespace answered by nvemu"; }

# Throttled, so that the writes last about 8 s however fast the machine is: the update
# must land in the middle of them.
job="--name=lu --filename=$dev --ioengine=libaio --direct=1 --rw=randwrite --bs=4k
 --iodepth=32 --offset=0 --size=32M --verify=crc32c --verify_fatal=1 --randrepeat=1
 --rate_iops=1000"
# shellcheck disable=SC2086
fio $job --do_verify=1 --eta=never --output=/tmp/fio1 &
fpid=$!
sleep 3
kill -0 $fpid 2>/dev/null && ok "fio is writing when the update starts" ||
	nok "fio is writing when the update starts (it finished too early)"
if host @@LIVEUPDATE; then
	ok "the host replaced nvemud ($OUT)"
else
	nok "the host replaced nvemud: $OUT"
fi
wait $fpid
frc=$?
if [ "$frc" = 0 ] && grep -q "err= *0" /tmp/fio1; then
	ok "fio randwrite + verify across the update: no I/O error, data verified"
else
	cat /tmp/fio1
	nok "fio randwrite + verify across the update (exit $frc)"
fi
dmesg > /tmp/dmesg
if grep -qiE "nvme.*(timeout|reset|I/O error|failed|disabled)" /tmp/dmesg; then
	grep -iE "nvme.*(timeout|reset|I/O error|failed|disabled)" /tmp/dmesg
	nok "the kernel saw no timeout, reset or I/O error"
else
	ok "the kernel saw no timeout, reset or I/O error"
fi
# shellcheck disable=SC2086
fio $job --verify_only --eta=never --output=/tmp/fio2 && ok "the data reads back verified from the new nvemud" ||
	{ cat /tmp/fio2; nok "the data reads back verified from the new nvemud"; }
if host "@@RPC nvme_controller_list -c NVMeCtrl1" && printf '%s' "$OUT" | grep -q '"suspended":false'; then
	ok "RPC reaches the new nvemud: NVMeCtrl1 running"
else
	nok "RPC reaches the new nvemud: $OUT"
fi
mn=$(idmn)
[ "$mn" = "forwarded by example" ] &&
	ok "after the update the new nvemud forwards Identify too (its configuration came along)" ||
	nok "forwarding after the update (id-ctrl model number '$mn')"
nvme smart-log "/dev/$ctrl" > /tmp/smart 2>&1 && grep -q temperature /tmp/smart &&
	ok "admin commands work after the update (smart-log)" || { cat /tmp/smart; nok "smart-log after the update"; }
finish
