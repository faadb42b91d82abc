#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (tests/guest/run-guest.sh): fault injection seen by
# the Linux NVMe/TCP host. An error bdev under a namespace fails reads on an
# LBA range with Unrecovered Read Error and a write with Write Fault (DNR):
# fio and dd get EIO, the kernel logs the status, `nvme error-log` has the
# entries with their status and LBA, `nvme smart-log` counts media errors.
# Then the device stops completing (pending): I/O hangs in the backend until
# the rule is cleared, and a held command does not keep namespace destroy or
# daemon shutdown from finishing.
. "$(dirname "$0")/lib.sh"
FNQN=nqn.2024-01.io.nvemu:fault
FADDR="-t tcp -a 127.0.0.1 -s 4423"

# The live controller and namespace 1 of $FNQN.
fctrl() {
	for _c in /sys/class/nvme/nvme*; do
		[ -e "$_c/subsysnqn" ] && grep -qx "$FNQN" "$_c/subsysnqn" &&
			[ "$(cat "$_c/state")" = live ] && echo "${_c##*/}" && return 0
	done
	return 1
}
# fns NSID: the block device of that namespace of $FNQN (multipath head or plain).
fns() {
	for _b in /sys/block/nvme*; do
		case ${_b##*/} in nvme*c*) continue ;; esac
		grep -qx "$FNQN" "$_b/device/subsysnqn" 2>/dev/null &&
			[ "$(cat "$_b/nsid" 2>/dev/null)" = "$1" ] && [ -b "/dev/${_b##*/}" ] &&
			echo "/dev/${_b##*/}" && return 0
	done
	return 1
}
# connect NSID [ARGS]: connect to $FNQN; C and D set once the controller and namespace are up.
connect() {
	_nsid=$1
	shift
	nvme connect $FADDR -n $FNQN --hostnqn="$HOSTNQN" --hostid="$HOSTID" "$@" || return 1
	for _i in $(seq 150); do
		C=$(fctrl) && D=$(fns "$_nsid") && return 0
		sleep 0.1
	done
	return 1
}
inject() { rpc bdev_error_inject_error -b EE_Fault "$@"; }
# jnum FILE KEY: the values of KEY in nvme-cli's output (JSON or plain), one per line.
jnum() { tr ',{}' '\n\n\n' <"$1" | sed -n "s/^[[:space:]]*\"*$2\"*[[:space:]]*:[[:space:]]*\([0-9]*\).*/\1/p"; }
pending() { rpc bdev_error_list -b EE_Fault | tr ',' '\n' | sed -n 's/.*"pending": *\([0-9]*\).*/\1/p'; }

start_nvemud || bail "nvemud starts"
ok "nvemud starts"
t "subsystem $FNQN on 4423, namespace 1 on error bdev EE_Fault over a 16 MiB RAM bdev" sh -c "
	nvemu-rpc nvme_subsystem_create --nqn $FNQN &&
	nvemu-rpc nvmf_subsystem_add_listener --nqn $FNQN -t tcp -a 127.0.0.1 --trsvcid 4423 &&
	nvemu-rpc nvmf_subsystem_allow_any_host --nqn $FNQN --allow_any_host true &&
	nvemu-rpc bdev_malloc_create -b Fault --num_blocks 32768 &&
	nvemu-rpc bdev_error_create --base_name Fault &&
	nvemu-rpc nvme_namespace_create --nqn $FNQN -b EE_Fault -n 1"
connect 1 >$OUT 2>&1 || bail "nvme connect: controller and namespace 1 appear"
ok "connected: /dev/$C, $D"
t "fio writes and verifies 1 MiB through the error bdev with no rule" \
	fio --name=clean --filename=$D --rw=write --bs=4k --size=1M --direct=1 \
	--ioengine=psync --verify=crc32c --do_verify=1

# ---- reads of LBAs 64..71 fail with Unrecovered Read Error (no DNR: the host retries, then gives up)
t "inject: read failure, LBAs 64-71, no limit, unrecovered_read_error" \
	inject --io_type read --error_type failure --num 4294967295 --offset_blocks 64 \
	--num_blocks 8 --status unrecovered_read_error
t "dd of LBAs 0-63 still reads" dd if=$D of=/dev/null bs=512 count=64 iflag=direct
t "dd of LBA 64 fails" sh -c "! dd if=$D of=/dev/null bs=512 skip=64 count=1 iflag=direct"
fio --name=rerr --filename=$D --rw=read --bs=4k --offset=32k --size=4k --direct=1 \
	--ioengine=psync >/tmp/fio-r 2>&1
FRC=$?
t "fio's read of the range fails (rc $FRC)" [ $FRC -ne 0 ]
# The kernel turns media errors (Unrecovered Read Error, Write Fault) into BLK_STS_MEDIUM: ENODATA.
tg "fio sees the media error as ENODATA (err=61)" "err=61" /tmp/fio-r
dmesg >/tmp/dmesg
tg "the kernel logged SCT 2h / SC 81h (Unrecovered Read Error)" "sct 0x2 / sc 0x81" /tmp/dmesg
nvme error-log /dev/$C -e 64 -o json >/tmp/errlog 2>&1
tg "nvme error-log: status field 281h (641)" '"status_field" *: *641' /tmp/errlog
tg "nvme error-log: the failed read's LBA, 64" '"lba" *: *64[^0-9]' /tmp/errlog
nvme smart-log /dev/$C >/tmp/smart 2>&1
ME=$(jnum /tmp/smart media_errors | head -n 1)
t "nvme smart-log: media errors counted (got ${ME:-none})" [ "${ME:-0}" -ge 1 ]
NE=$(jnum /tmp/smart num_err_log_entries | head -n 1)
t "nvme smart-log: error log entries counted (got ${NE:-none})" [ "${NE:-0}" -ge 1 ]
[ "${ME:-0}" -ge 1 ] && [ "${NE:-0}" -ge 1 ] || diag /tmp/smart
t "num 0 on reads removes the rule" inject --io_type read --error_type failure --num 0
t "LBA 64 reads again" dd if=$D of=/dev/null bs=512 skip=64 count=1 iflag=direct

# ---- one write fails with Write Fault and DNR: no retry, one error
t "inject: one write, sct 2 sc 0x80 with DNR" \
	inject --io_type write --error_type failure --num 1 --sct 2 --sc 0x80 --dnr
fio --name=werr --filename=$D --rw=write --bs=4k --offset=64k --size=4k --direct=1 \
	--ioengine=psync >/tmp/fio-w 2>&1
FRC=$?
t "fio's write fails (rc $FRC)" [ $FRC -ne 0 ]
tg "fio sees the media error as ENODATA (err=61)" "err=61" /tmp/fio-w
dmesg >/tmp/dmesg
tg "the kernel logged SCT 2h / SC 80h (Write Fault) with DNR" "sct 0x2 / sc 0x80.*DNR\|sc 0x80" /tmp/dmesg
nvme error-log /dev/$C -e 64 -o json >/tmp/errlog 2>&1
tg "nvme error-log: status field 4280h (17024, DNR set)" '"status_field" *: *17024' /tmp/errlog
call_list() { rpc bdev_error_list -b EE_Fault >/tmp/list 2>&1; }
call_list
tg "bdev_error_list: the write rule is used up (num 0, injected 1)" '"injected": *1' /tmp/list
t "the next write succeeds" dd if=/dev/zero of=$D bs=4096 seek=16 count=1 oflag=direct

# ---- a device that stops completing, and comes back
t "inject: pending on every I/O type, no limit" \
	inject --io_type all --error_type pending --num 4294967295
dd if=$D of=/dev/null bs=4096 skip=100 count=1 iflag=direct >/tmp/dd1 2>&1 &
DD=$!
sleep 3
t "the read hangs" kill -0 $DD
t "bdev_error_list: 1 command held (got $(pending))" [ "$(pending)" -ge 1 ]
t "nvemud answers meanwhile" alive
t "clear: the device completes again" inject --io_type clear
t "the held read completes successfully" wait_pid $DD 20
t "dd exit status 0 (got ${WAIT_RC:-?})" [ "${WAIT_RC:-1}" -eq 0 ]

# ---- stopped: a controller reset (a new association over NVMe/TCP) aborts the held
# command on the old controller, which then goes away instead of lingering
# Controllers of $FNQN in the model, dead associations' included (nvmf_ lists only live ones).
ctrls() { rpc nvme_controller_list --nqn $FNQN | grep -o -- '-tcp-[0-9]*' | sort -u | wc -l; }
t "inject: pending" inject --io_type all --error_type pending --num 4294967295
dd if=$D of=/dev/null bs=4096 skip=150 count=1 iflag=direct >/tmp/dd1 2>&1 &
DD=$!
sleep 3
t "a read is held (got $(pending))" [ "$(pending)" -ge 1 ]
t "nvme reset completes with the read held" timeout 60 nvme reset /dev/$C
for _i in $(seq 100); do
	[ "$(ctrls)" = 1 ] && [ "$(cat /sys/class/nvme/$C/state)" = live ] && break
	sleep 0.2
done
t "one controller left on the target: the old one went (got $(ctrls))" [ "$(ctrls)" = 1 ]
t "the host is live again" [ "$(cat /sys/class/nvme/$C/state)" = live ]
t "clear: the retried read completes" inject --io_type clear
t "the read ends" wait_pid $DD 30
t "dd exit status 0 (got ${WAIT_RC:-?})" [ "${WAIT_RC:-1}" -eq 0 ]

# ---- stopped again: namespace destroy aborts the held command and finishes
t "inject: pending again" inject --io_type all --error_type pending --num 4294967295
dd if=$D of=/dev/null bs=4096 skip=200 count=1 iflag=direct >/tmp/dd2 2>&1 &
DD=$!
sleep 3
t "a read is held (got $(pending))" [ "$(pending)" -ge 1 ]
t "nvme_namespace_destroy answers with the read held (teardown aborts it)" \
	timeout 30 nvemu-rpc -t 30 nvme_namespace_destroy --nqn $FNQN -n 1
t "the error bdev holds nothing any more (got $(pending))" [ "$(pending)" -eq 0 ]
t "the held read ends (an error: its namespace is gone)" wait_pid $DD 60
t "nvemud answers" alive
nvme disconnect -n $FNQN >/dev/null 2>&1

# ---- stopped with a host connected: SIGTERM still shuts down
t "namespace 2 on EE_Fault (no rule: the host scans it)" sh -c "
	nvemu-rpc nvme_namespace_create --nqn $FNQN -b EE_Fault -n 2"
# Once nvemud is gone the host gives up after 2 s instead of reconnecting for minutes.
connect 2 --ctrl-loss-tmo=2 --reconnect-delay=1 >$OUT 2>&1 ||
	bail "connected again: namespace 2 appears"
D2=$D
ok "connected again ($D2)"
t "inject: pending" inject --io_type all --error_type pending --num 4294967295
dd if=$D2 of=/dev/null bs=4096 count=1 iflag=direct >/tmp/dd3 2>&1 &
DD=$!
sleep 3
t "a read is held (got $(pending))" [ "$(pending)" -ge 1 ]
stop_nvemud
t "SIGTERM: nvemud exits with the read held (status $STOP_RC)" [ "$STOP_RC" = 0 ]
check_sanitizer
t "the host gives the held read up once nvemud is gone" wait_pid $DD 60
nvme disconnect -n $FNQN >/dev/null 2>&1 &
finish
