#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (tests/guest/run-guest.sh): Linux native NVMe
# multipath (nvme_core multipath=Y) over ANA against nvemud on the guest's
# loopback, and per-host namespace masking. TAP output.
#
# One subsystem with ana_reporting and two listeners (127.0.0.1:4420 and
# :4421); the host connects through both and sees one namespace with two
# paths. While fio writes and verifies through the multipath device, one
# path is set inaccessible over RPC: the host reads the ANA change (AEN, ANA
# log), I/O goes on through the other path and the verify passes. Then the
# roles swap. Masking: namespace 2 is visible only to the first host NQN; a
# second host NQN (through a third listener) does not see it until nvmf_ns_add_host.
. "$(dirname "$0")/lib.sh"
NQN=nqn.2024-01.io.nvemu:ana
SHORT=ana
OTHERNQN=nqn.2014-08.org.nvmexpress:uuid:0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b
OTHERID=0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b

# ctrl_at PORT [HOSTNQN]: the live controller device name (nvmeN) connected through PORT.
ctrl_at() {
	for _c in /sys/class/nvme/nvme*; do
		[ -e "$_c/subsysnqn" ] && grep -qx "$NQN" "$_c/subsysnqn" || continue
		[ "$(cat "$_c/state")" = live ] || continue
		grep -q "trsvcid=$1\(,\|$\)" "$_c/address" || continue
		[ -n "${2:-}" ] && ! grep -qx "$2" "$_c/hostnqn" 2>/dev/null && continue
		echo "${_c##*/}"
		return 0
	done
	return 1
}
wait_ctrl_at() {
	for _i in $(seq 150); do
		ctrl_at "$@" >/dev/null && return 0
		sleep 0.1
	done
	return 1
}
# path_state CTRL NSID: the ANA state the host holds for that path.
path_state() {
	for _p in /sys/class/nvme/$1/nvme*c*n$2; do
		cat "$_p/ana_state" 2>/dev/null && return 0
	done
	echo none
}
# wait_state CTRL NSID STATE: up to 20 s.
wait_state() {
	for _i in $(seq 200); do
		[ "$(path_state "$1" "$2")" = "$3" ] && return 0
		sleep 0.1
	done
	echo "path $1 ns $2: $(path_state "$1" "$2"), wanted $3"
	return 1
}
set_state() { # PORT STATE
	rpc nvmf_subsystem_listener_set_ana_state --nqn $NQN --traddr 127.0.0.1 --trsvcid "$1" \
		--ana_state "$2" --anagrpid 1
}
# nslist CTRL: the active NSIDs the controller reports, one per line.
nslist() { nvme list-ns "/dev/$1" 2>/dev/null | sed -n 's/.*\]:0x\([0-9a-f]*\).*/\1/p'; }
has_ns() { nslist "$1" | grep -qx "$2"; }
wait_ns_on() { # CTRL NSID [gone]
	for _i in $(seq 150); do
		if [ "${3:-}" = gone ]; then has_ns "$1" "$2" || return 0
		else has_ns "$1" "$2" && return 0
		fi
		sleep 0.1
	done
	return 1
}
# fio_verify DEV MODE: 4 KiB random writes verified with crc32c over 16 MiB.
fio_verify() {
	_extra="--do_verify=1"
	[ "$2" = verify ] && _extra="--verify_only=1"
	fio --ioengine=libaio --direct=1 --rw=randwrite --iodepth=16 --numjobs=2 --size=8M \
		--offset_increment=8M --verify=crc32c --verify_fatal=1 --group_reporting $_extra \
		--filename="$1" --name=ana --bs=4k
}
# iostat_writes NAME: the writes the controller counted.
iostat_writes() {
	rpc nvme_controller_iostat --ctrl "$1" | sed -n 's/^  "write_io_count": \([0-9]*\).*/\1/p'
}

t "nvme_core multipath=Y" grep -qx Y /sys/module/nvme_core/parameters/multipath

# ---- the subsystem: ANA reporting, two listeners, a shared and a masked namespace
start_nvemud -l none || bail "nvemud starts"
ok "nvemud starts"
t "subsystem with ana_reporting, namespace 1 (group 1), masked namespace 2, listeners 4420 and 4421" sh -c "
	nvemu-rpc nvme_subsystem_create --nqn $NQN --ana_reporting true &&
	nvemu-rpc bdev_malloc_create -b Ram0 --num_blocks 65536 &&
	nvemu-rpc bdev_malloc_create -b Ram1 --num_blocks 8192 &&
	nvemu-rpc nvme_namespace_create --nqn $NQN -b Ram0 -n 1 --anagrpid 1 &&
	nvemu-rpc nvme_namespace_create --nqn $NQN -b Ram1 -n 2 --anagrpid 1 --no_auto_visible true &&
	nvemu-rpc nvmf_ns_add_host --nqn $NQN -n 2 --host $HOSTNQN &&
	nvemu-rpc nvmf_subsystem_add_listener --nqn $NQN --traddr 127.0.0.1 --trsvcid 4420 &&
	nvemu-rpc nvmf_subsystem_add_listener --nqn $NQN --traddr 127.0.0.1 --trsvcid 4421"

# ---- two paths
nvme connect -t tcp -a 127.0.0.1 -s 4420 -n $NQN --hostnqn="$HOSTNQN" --hostid="$HOSTID" \
	>$OUT 2>&1 && wait_ctrl_at 4420 || bail "nvme connect through 4420"
ok "nvme connect through 4420"
nvme connect -t tcp -a 127.0.0.1 -s 4421 -n $NQN --hostnqn="$HOSTNQN" --hostid="$HOSTID" \
	>$OUT 2>&1 && wait_ctrl_at 4421 || bail "nvme connect through 4421"
ok "nvme connect through 4421"
CA=$(ctrl_at 4420)
CB=$(ctrl_at 4421)
echo "# path A: $CA (4420), path B: $CB (4421)"
t "namespace 1 appears" wait_ns 1
DEV=$(ns_dev 1)
SUBSYS=none
for s in /sys/class/nvme-subsystem/nvme-subsys*; do
	grep -qx "$NQN" "$s/subsysnqn" 2>/dev/null && SUBSYS=${s##*/}
done
echo "# multipath device $DEV, $SUBSYS"
t "one subsystem holds both controllers" sh -c \
	"[ -e /sys/class/nvme-subsystem/$SUBSYS/$CA ] && [ -e /sys/class/nvme-subsystem/$SUBSYS/$CB ]"
t "one namespace head ($DEV) with two paths" sh -c \
	"[ \$(ls -d /sys/class/nvme/$CA/nvme*c*n1 /sys/class/nvme/$CB/nvme*c*n1 | wc -l) -eq 2 ]"
nvme id-ctrl /dev/$CA >/tmp/idctrl 2>&1
tg "id-ctrl: CMIC reports ANA (bit 3)" "^cmic *: *0x[0-9a-f]*[89a-f]$" /tmp/idctrl
tg "id-ctrl: ANATT 10" "^anatt *: *10$" /tmp/idctrl
nvme id-ns /dev/$CA -n 1 >/tmp/idns 2>&1
tg "id-ns: ANAGRPID 1" "^anagrpid *: *1$" /tmp/idns
nvme list-subsys "$DEV" >/tmp/lsub 2>&1
t "nvme list-subsys: both paths live and optimized" sh -c \
	"[ \$(grep -c 'live optimized' /tmp/lsub) -eq 2 ] || [ \$(grep -c 'optimized' /tmp/lsub) -ge 2 ]"
cat /tmp/lsub | diag
t "sysfs: path A optimized" wait_state "$CA" 1 optimized
t "sysfs: path B optimized" wait_state "$CB" 1 optimized
nvme ana-log /dev/$CA >/tmp/analog 2>&1
tg "nvme ana-log: group 1 optimized with NSID 1" "optimized" /tmp/analog

# ---- the controllers by name over RPC
rpc nvme_controller_list --nqn $NQN >/tmp/ctrls 2>&1
tg "nvme_controller_list names the host controllers ($SHORT-tcp-N)" "\"name\": \"$SHORT-tcp-" \
	/tmp/ctrls
NA=$SHORT-tcp-$(cat /sys/class/nvme/$CA/cntlid)
NB=$SHORT-tcp-$(cat /sys/class/nvme/$CB/cntlid)
echo "# path A is $NA, path B is $NB"
tg "... $NA and $NB" "\"name\": \"$NA\"" /tmp/ctrls
tg "... $NB" "\"name\": \"$NB\"" /tmp/ctrls
t "nvme_controller_debug_get reaches $NA" rpc nvme_controller_debug_get --ctrl "$NA"

# ---- fio verify while path A goes inaccessible
fio_verify "$DEV" write >/tmp/fio1 2>&1 &
FIO=$!
sleep 3
A0=$(iostat_writes "$NA")
B0=$(iostat_writes "$NB")
t "path A (4420) set inaccessible over RPC during fio" set_state 4420 inaccessible
t "the host sees path A inaccessible (ANA change event, ANA log)" wait_state "$CA" 1 inaccessible
t "path B still optimized" wait_state "$CB" 1 optimized
sleep 2
A1=$(iostat_writes "$NA")
B1=$(iostat_writes "$NB")
echo "# writes: $NA $A0 -> $A1, $NB $B0 -> $B1"
wait $FIO
FRC=$?
if [ $FRC -eq 0 ]; then ok "fio write+verify across the path change passes"; else
	nok "fio write+verify across the path change passes (rc $FRC)"
	tail -n 20 /tmp/fio1 | diag
fi
# fio may have written everything before the switch (a fast run): writes now go to B only.
dd if=/dev/zero of="$DEV" bs=4k count=256 seek=4096 oflag=direct conv=fsync 2>/dev/null
A2=$(iostat_writes "$NA")
B2=$(iostat_writes "$NB")
echo "# writes at the end: $NA $A2, $NB $B2"
t "I/O went on through path B (its writes grew: $B0 -> $B2)" [ "${B2:-0}" -gt "${B0:-0}" ]
t "... and no more writes on the inaccessible path A after the change ($A1 -> $A2)" \
	[ "${A2:-0}" -eq "${A1:-0}" ]

# ---- roles swapped: B inaccessible, A optimized
t "A optimized over RPC" set_state 4420 optimized
t "B inaccessible over RPC" set_state 4421 inaccessible
t "the host sees A optimized" wait_state "$CA" 1 optimized
t "the host sees B inaccessible" wait_state "$CB" 1 inaccessible
t "fio verify of the data through path A" fio_verify "$DEV" verify
t "B persistent_loss" set_state 4421 persistent_loss
t "the host sees B persistent-loss" wait_state "$CB" 1 persistent-loss
t "fio write+verify with B in persistent loss" fio_verify "$DEV" write
t "B back to optimized" set_state 4421 optimized
t "the host sees B optimized again" wait_state "$CB" 1 optimized
rpc nvmf_subsystem_get_listeners --nqn $NQN >/tmp/lst 2>&1
tg "nvmf_subsystem_get_listeners shows ana_states" '"ana_state": "optimized"' /tmp/lst

# ---- masking: namespace 2 is only for $HOSTNQN
t "the first host sees namespace 2" wait_ns_on "$CA" 2
# Through a third listener: nvme-cli takes a controller of another host on the same
# address for "already connected".
t "a third listener (4422)" rpc nvmf_subsystem_add_listener --nqn $NQN --traddr 127.0.0.1 \
	--trsvcid 4422
if nvme connect -t tcp -a 127.0.0.1 -s 4422 -n $NQN --hostnqn="$OTHERNQN" --hostid="$OTHERID" \
	>/tmp/conn2 2>&1 && wait_ctrl_at 4422 "$OTHERNQN"; then
	ok "a second host NQN connects"
else
	nok "a second host NQN connects"
	diag /tmp/conn2
	dmesg | tail -n 15 | diag
	for c in /sys/class/nvme/nvme*; do echo "$c $(cat $c/state) $(cat $c/hostnqn 2>&1)"; done | diag
fi
CO=$(ctrl_at 4422 "$OTHERNQN")
echo "# second host's controller: $CO"
t "... it sees namespace 1" wait_ns_on "$CO" 1
if has_ns "$CO" 2; then nok "second host: namespace 2 absent from its active list"; else
	ok "second host: namespace 2 absent from its active list"; fi
nvme id-ns "/dev/$CO" -n 2 >/tmp/idns2 2>&1
tg "second host: Identify Namespace 2 reads as inactive (nsze 0)" "^nsze *: *0$" /tmp/idns2
t "nvmf_ns_add_host for the second host" rpc nvmf_ns_add_host --nqn $NQN -n 2 --host $OTHERNQN
t "namespace 2 appears on the second host's controller (AEN)" wait_ns_on "$CO" 2
t "nvmf_ns_remove_host" rpc nvmf_ns_remove_host --nqn $NQN -n 2 --host $OTHERNQN
t "namespace 2 disappears from the second host's controller" wait_ns_on "$CO" 2 gone
t "the first host still sees namespace 2" has_ns "$CA" 2

nvme disconnect -n $NQN >/dev/null 2>&1
check_sanitizer
stop_nvemud
t "nvemud stops on SIGTERM (exit $STOP_RC)" [ "$STOP_RC" = 0 ]
finish
