#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (tests/guest/run-guest.sh): reservations between two
# Linux NVMe/TCP hosts (two host NQNs and Host IDs, two `nvme connect` to one
# subsystem) driven by nvme-cli, with the kernel's own reads and writes
# meeting the reservation; then Persist Through Power Loss across an nvemud
# restart from save_config. nvme_core is reloaded with multipath=N, so each
# host's controller has its own block device and commands take a known path.
. "$(dirname "$0")/lib.sh"
RNQN=nqn.2024-01.io.nvemu:resv
RADDR="-t tcp -a 127.0.0.1 -s 4421"
# Host B comes through a second listener: nvme-cli takes a second connect to
# the same address as a duplicate, whatever the host NQN.
BADDR="-t tcp -a 127.0.0.1 -s 4422"
BNQN=nqn.2014-08.org.nvmexpress:uuid:0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b
BID=0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b
PTPL=/tmp/resv1.ptpl
CFG=/tmp/nvemu-resv.json
KA=0xa1a1
KB=0xb2b2

# ---- the kernel host without multipath: one block device per controller
rmmod nvme_tcp nvme_fabrics nvme_core 2>/dev/null
while read -r ko; do
	case $ko in
	*/nvme-core.ko) insmod "$ko" multipath=N ;;
	*) insmod "$ko" 2>/dev/null ;;
	esac
done </etc/modules.order
t "nvme_core reloaded with multipath=N" grep -qx N /sys/module/nvme_core/parameters/multipath

# ctrl_of HOSTNQN: the live controller of $RNQN that host connected.
ctrl_of() {
	for _c in /sys/class/nvme/nvme*; do
		[ -e "$_c/subsysnqn" ] && grep -qx "$RNQN" "$_c/subsysnqn" &&
			grep -qx "$1" "$_c/hostnqn" && [ "$(cat "$_c/state")" = live ] &&
			echo "${_c##*/}" && return 0
	done
	return 1
}
# ns_of CTRL: its namespace 1 block device.
ns_of() {
	for _n in /sys/class/nvme/$1/$1n*; do
		[ -e "$_n" ] && [ -b "/dev/${_n##*/}" ] && echo "/dev/${_n##*/}" && return 0
	done
	return 1
}
connect_both() {
	nvme connect $RADDR -n $RNQN --hostnqn="$HOSTNQN" --hostid="$HOSTID" &&
		nvme connect $BADDR -n $RNQN --hostnqn="$BNQN" --hostid="$BID" || return 1
	for _i in $(seq 150); do
		CA=$(ctrl_of "$HOSTNQN") && CB=$(ctrl_of "$BNQN") && DA=$(ns_of "$CA") &&
			DB=$(ns_of "$CB") && return 0
		sleep 0.1
	done
	return 1
}
disconnect_all() {
	nvme disconnect -n $RNQN >/dev/null 2>&1
	for _i in $(seq 100); do
		ctrl_of "$HOSTNQN" >/dev/null || ctrl_of "$BNQN" >/dev/null || return 0
		sleep 0.1
	done
	return 1
}
# wr DEV / rd DEV: one direct 4 KiB write / read at offset 0.
wr() { dd if=/tmp/pattern of="$1" bs=4096 count=1 oflag=direct conv=notrunc 2>&1; }
rd() { dd if="$1" of=/dev/null bs=4096 count=1 iflag=direct 2>&1; }
# refused CMD...: the command fails (the kernel reports the Reservation Conflict as an I/O error).
refused() { ! "$@"; }
# report CTRL FILE: the extended Reservation Report in JSON.
report() { nvme resv-report "/dev/$1" -n 1 -e -o json >"$2" 2>&1; }
field() { sed -n "s/.*\"$1\" *: *\"*\([0-9a-fx]*\)\"*.*/\1/p" "$2" | head -n 1; }
dd if=/dev/urandom of=/tmp/pattern bs=4096 count=1 2>/dev/null

# ---- a subsystem of its own, one namespace with a PTPL file
start_nvemud || bail "nvemud starts"
ok "nvemud starts"
t "subsystem $RNQN with listeners on 4421 and 4422, namespace 1 (ptpl_file $PTPL)" sh -c "
	nvemu-rpc nvme_subsystem_create --nqn $RNQN &&
	nvemu-rpc nvmf_subsystem_add_listener --nqn $RNQN -t tcp -a 127.0.0.1 --trsvcid 4421 &&
	nvemu-rpc nvmf_subsystem_add_listener --nqn $RNQN -t tcp -a 127.0.0.1 --trsvcid 4422 &&
	nvemu-rpc nvmf_subsystem_allow_any_host --nqn $RNQN --allow_any_host true &&
	nvemu-rpc bdev_malloc_create -b Resv0 --num_blocks 16384 &&
	nvemu-rpc nvme_namespace_create --nqn $RNQN -b Resv0 -n 1 --ptpl_file $PTPL"
connect_both >$OUT 2>&1 || bail "two hosts connect: controllers and namespaces appear"
ok "host A ($CA, $DA) and host B ($CB, $DB) connected"

nvme id-ctrl /dev/$CA >/tmp/idctrl 2>&1
ONCS=$(sed -n 's/^oncs *: *\(0x[0-9a-f]*\).*/\1/p' /tmp/idctrl)
FUSES=$(sed -n 's/^fuses *: *\(0x[0-9a-f]*\).*/\1/p' /tmp/idctrl)
t "id-ctrl: ONCS has Reservations (got $ONCS)" [ $((ONCS & 0x20)) -ne 0 ]
t "id-ctrl: FUSES has Compare and Write (got $FUSES)" [ $((FUSES & 1)) -eq 1 ]
nvme id-ns /dev/$CA -n 1 >/tmp/idns 2>&1
tg "id-ns: RESCAP 0xff (every type, IEKEY, PTPL)" "^rescap *: *0xff" /tmp/idns

# ---- register, report
t "A registers key $KA, persisting through power loss" \
	nvme resv-register /dev/$CA -n 1 -k $KA -r 0 -p 3
t "B registers key $KB" nvme resv-register /dev/$CB -n 1 -k $KB -r 0
t "B registering again with another key: refused" \
	refused nvme resv-register /dev/$CB -n 1 -k 0x1234 -r 0
t "the normal report cannot carry 128-bit host identifiers: refused" \
	refused nvme resv-report /dev/$CA -n 1
report $CA /tmp/rep
t "report: 2 registrants (got $(field regctl /tmp/rep))" [ "$(field regctl /tmp/rep)" = 2 ]
t "report: PTPL state 1" [ "$(field ptpls /tmp/rep)" = 1 ]
t "report: both Host IDs" sh -c "tr -d '-' </tmp/rep | grep -q $(echo $HOSTID | tr -d -) &&
	tr -d '-' </tmp/rep | grep -q $(echo $BID | tr -d -)"
[ $failed -eq 0 ] || diag /tmp/rep

# ---- Write Exclusive held by A
t "A acquires Write Exclusive" nvme resv-acquire /dev/$CA -n 1 -c $KA -t 1 -a 0
t "B acquiring it too: refused" refused nvme resv-acquire /dev/$CB -n 1 -c $KB -t 1 -a 0
t "A writes" wr $DA
t "B's write meets the reservation" refused wr $DB
t "B reads (Write Exclusive)" rd $DB
dmesg >/tmp/dmesg
tg "the kernel logged the refused write as SC 83h (Reservation Conflict)" "sc 0x83" /tmp/dmesg
report $CB /tmp/rep
t "report: rtype 1" [ "$(field rtype /tmp/rep)" = 1 ]

# ---- B preempts A with Exclusive Access
t "B preempts A (Exclusive Access)" nvme resv-acquire /dev/$CB -n 1 -c $KB -p $KA -t 2 -a 1
t "A's read meets the reservation" refused rd $DA
t "A's write meets the reservation" refused wr $DA
t "B writes" wr $DB
report $CB /tmp/rep
t "report: 1 registrant, rtype 2" sh -c "[ '$(field regctl /tmp/rep)' = 1 ] &&
	[ '$(field rtype /tmp/rep)' = 2 ]"
nvme get-log /dev/$CA --log-id=0x80 --log-len=64 -b >/tmp/rlog 2>/dev/null
t "A's Reservation Notification log: Registration Preempted, NSID 1" sh -c \
	"[ \"\$(od -An -tx1 -j8 -N1 /tmp/rlog | tr -d ' ')\" = 01 ] &&
	 [ \"\$(od -An -tx1 -j12 -N1 /tmp/rlog | tr -d ' ')\" = 01 ]"

# ---- release; registrants-only
t "B releases with the wrong type: refused" \
	refused nvme resv-release /dev/$CB -n 1 -c $KB -t 1 -a 0
t "B releases" nvme resv-release /dev/$CB -n 1 -c $KB -t 2 -a 0
t "A writes again" wr $DA
t "A registers again (PTPL on)" nvme resv-register /dev/$CA -n 1 -k $KA -r 0 -p 3
t "B acquires Write Exclusive - Registrants Only" \
	nvme resv-acquire /dev/$CB -n 1 -c $KB -t 3 -a 0
t "A, a registrant, writes" wr $DA

# ---- Persist Through Power Loss: nvemud restarts from its saved configuration
t "save_config to $CFG names the PTPL file" sh -c \
	"nvemu-rpc save_config -f $CFG && grep -q '\"ptpl_file\": \"$PTPL\"' $CFG"
stop_nvemud
t "nvemud stops (exit $STOP_RC)" [ "$STOP_RC" = 0 ]
t "both hosts disconnect" disconnect_all
start_nvemud -c $CFG >$OUT 2>&1 || bail "nvemud restarts with -c $CFG"
ok "nvemud restarts with -c $CFG"
connect_both >$OUT 2>&1 || bail "both hosts reconnect"
ok "both hosts reconnect ($CA, $CB)"
report $CA /tmp/rep
t "after the restart: 2 registrants, rtype 3, PTPL 1" sh -c "[ '$(field regctl /tmp/rep)' = 2 ] &&
	[ '$(field rtype /tmp/rep)' = 3 ] && [ '$(field ptpls /tmp/rep)' = 1 ]"
[ $failed -eq 0 ] || diag /tmp/rep
t "A, still a registrant, writes" wr $DA
t "A unregisters" nvme resv-register /dev/$CA -n 1 -c $KA -r 1
t "A's write now meets the reservation" refused wr $DA
t "B clears every registration and the reservation" \
	nvme resv-release /dev/$CB -n 1 -c $KB -a 1
t "A writes after the clear" wr $DA
report $CA /tmp/rep
t "report: nothing registered" [ "$(field regctl /tmp/rep)" = 0 ]
t "disconnect" disconnect_all

check_sanitizer
stop_nvemud
t "nvemud stops on SIGTERM (exit $STOP_RC)" [ "$STOP_RC" = 0 ]
finish
