#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (tests/guest/run-guest.sh): the kernel's NVMe/TCP host
# (nvme-cli, fio) against nvemud on the guest's own loopback. TAP output, one
# line per check; exit status 1 if any check failed.
#
# nvemud starts with its default configuration (subsystem
# nqn.2014-08.io.nvemu:default, listener 127.0.0.1:4420, any host); the
# script adds a 16 MiB RAM namespace (NSID 3) and a 16 MiB file namespace on
# the guest's tmpfs (NSID 4) over RPC.
. "$(dirname "$0")/lib.sh"
OTHERNQN=nqn.2014-08.org.nvmexpress:uuid:0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b
OTHERID=0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b
FILE=/tmp/nvemu-file0.img
CFG=/tmp/nvemu-config.json

wait_ctrl() {
	for _i in $(seq 150); do
		CTRL=$(ctrl_dev) && return 0
		sleep 0.1
	done
	return 1
}
connect() {
	nvme connect $ADDR -n $NQN --hostnqn="$HOSTNQN" --hostid="$HOSTID" "$@" && wait_ctrl &&
		wait_ns 3 && wait_ns 4
}
disconnect() {
	nvme disconnect -n $NQN >/dev/null 2>&1
	for _i in $(seq 100); do
		ctrl_dev >/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# fio_pair DEV MODE: random writes verified with crc32c, 4 KiB blocks on the
# first 8 MiB and 128 KiB on the next 8 MiB, two jobs each at depth 32.
# MODE write: write then verify; verify: only check what the last write left.
fio_pair() {
	_extra="--do_verify=1"
	[ "$2" = verify ] && _extra="--verify_only=1"
	fio --ioengine=libaio --direct=1 --rw=randwrite --iodepth=32 --numjobs=2 --size=4M \
		--offset_increment=4M --verify=crc32c --verify_fatal=1 --group_reporting $_extra \
		--filename="$1" --name=small --bs=4k --offset=0 \
		--name=large --bs=128k --offset=8M
}
fio_small() {
	fio --ioengine=libaio --direct=1 --rw=randwrite --iodepth=32 --numjobs=2 --size=2M \
		--offset_increment=2M --verify=crc32c --verify_fatal=1 --do_verify=1 \
		--group_reporting --filename="$1" --name=digest --bs=4k --offset=0
}

# ---- nvemud with its default configuration
start_nvemud || bail "nvemud starts with the default configuration"
ok "nvemud starts with the default configuration"
rpc nvmf_subsystem_get_listeners --nqn $NQN >$OUT 2>&1
if grep -q '"traddr": "127.0.0.1"' $OUT && grep -q '"trsvcid": "4420"' $OUT; then
	ok "default listener 127.0.0.1:4420"
else
	nok "default listener 127.0.0.1:4420"
fi
truncate -s 16M $FILE
t "RAM namespace 3 and file namespace 4 (tmpfs, no O_DIRECT) created over RPC" sh -c "
	nvemu-rpc bdev_malloc_create -b Ram0 --num_blocks 32768 &&
	nvemu-rpc bdev_file_create -b File0 --filename $FILE --direct false &&
	nvemu-rpc nvme_namespace_create --nqn $NQN -b Ram0 -n 3 &&
	nvemu-rpc nvme_namespace_create --nqn $NQN -b File0 -n 4"
t "temperature set over RPC (333 K)" rpc nvme_subsystem_set_health --nqn $NQN --temperature 333
rpc nvme_subsystem_list --nqn $NQN >/tmp/subsys.json
SN=$(sed -n 's/.*"serial_number": "\(.*\)".*/\1/p' /tmp/subsys.json | head -n 1)
MN=$(sed -n 's/.*"model_number": "\(.*\)".*/\1/p' /tmp/subsys.json | head -n 1)
echo "# subsystem serial '$SN' model '$MN'"

# ---- discovery and connect
nvme discover $ADDR --hostnqn="$HOSTNQN" --hostid="$HOSTID" >$OUT 2>&1
if grep -q "subnqn: *$NQN" $OUT && grep -q "traddr: *127.0.0.1" $OUT; then
	ok "nvme discover lists $NQN at 127.0.0.1"
else
	nok "nvme discover lists $NQN at 127.0.0.1"
fi
connect >$OUT 2>&1 || bail "nvme connect: controller and namespaces 3 and 4 appear"
ok "nvme connect: controller $CTRL, namespaces 3 and 4 appear"
RAMDEV=$(ns_dev 3)
FILEDEV=$(ns_dev 4)
echo "# RAM namespace $RAMDEV, file namespace $FILEDEV"

# ---- identify, logs, features
nvme id-ctrl $CTRL >/tmp/idctrl 2>&1
tg "id-ctrl: serial '$SN'" "^sn *: *$SN *$" /tmp/idctrl
tg "id-ctrl: model '$MN'" "^mn *: *$MN *$" /tmp/idctrl
tg "id-ctrl: subnqn $NQN" "^subnqn *: *$NQN *$" /tmp/idctrl
nvme id-ns $CTRL -n 3 >/tmp/idns 2>&1
tg "id-ns 3: nsze 0x8000 (16 MiB of 512 B blocks)" "^nsze *: *0x8000$" /tmp/idns
nvme id-ns $CTRL -n 4 >/tmp/idns 2>&1
tg "id-ns 4: nsze 0x8000 (the file's size)" "^nsze *: *0x8000$" /tmp/idns
nvme smart-log $CTRL >/tmp/smart 2>&1
tg "smart-log: temperature 333 K set over RPC" "^temperature.*333 Kelvin" /tmp/smart
# The host asks for one I/O queue per CPU (2): NSQA = NCQA = 1 (0's based).
nvme get-feature $CTRL -f 7 >/tmp/feat 2>&1
tg "get-feature -f 7: Number of Queues 0x00010001" "Number of Queues.*Current value:0x00010001" \
	/tmp/feat
nvme list >/tmp/list 2>&1
tg "nvme list shows $RAMDEV with serial $SN" "^$RAMDEV .* $SN " /tmp/list

# ---- fio verify
t "fio verify on the RAM namespace (4k and 128k, depth 32, 2+2 jobs)" fio_pair "$RAMDEV" write
t "fio verify on the file namespace (4k and 128k, depth 32, 2+2 jobs)" fio_pair "$FILEDEV" write
if [ -n "$NVEMUD_REACTORS" ]; then
	t "--reactors $NVEMUD_REACTORS: the host's second I/O queue ran on reactor thread nvemud-r1" \
		reactor_busy 1
fi

# ---- namespaces attached and detached while connected (AEN)
t "nvmf_subsystem_get_controllers shows the host" sh -c \
	"nvemu-rpc nvmf_subsystem_get_controllers --nqn $NQN | grep -q '$HOSTNQN'"
rpc bdev_malloc_create -b Ram1 --num_blocks 4096 >$OUT 2>&1 &&
	rpc nvme_namespace_create --nqn $NQN -b Ram1 -n 5 >>$OUT 2>&1
t "namespace 5 created over RPC appears on the host without reconnecting" wait_ns 5
rpc nvme_namespace_destroy --nqn $NQN -n 5 >$OUT 2>&1
t "namespace 5 destroyed over RPC disappears from the host" wait_ns 5 gone
t "other namespaces still there" sh -c "[ -b $RAMDEV ] && [ -b $FILEDEV ]"

# ---- reconnect with digests: the data is still there
t "nvme disconnect" disconnect
connect --hdr-digest --data-digest >$OUT 2>&1
t "nvme connect --hdr-digest --data-digest" [ $? -eq 0 ]
RAMDEV=$(ns_dev 3)
FILEDEV=$(ns_dev 4)
t "RAM namespace data intact after reconnect" fio_pair "$RAMDEV" verify
t "file namespace data intact after reconnect" fio_pair "$FILEDEV" verify
t "fio verify with header and data digests" fio_small "$RAMDEV"

# ---- restart from a saved configuration
t "save_config to $CFG" rpc save_config -f $CFG
t "save_config keeps the listener and allow_any_host" sh -c \
	"grep -q nvmf_subsystem_add_listener $CFG && grep -q '\"allow_any_host\": true' $CFG"
stop_nvemud
t "SIGTERM with a host connected: nvemud exits 0 (got $STOP_RC)" [ "$STOP_RC" = 0 ]
t "... and says it stopped" grep -q "nvemud: stopped" $LOG
t "nvme disconnect of the orphaned controller" disconnect
start_nvemud -c $CFG >$OUT 2>&1 || bail "nvemud restarts with -c $CFG"
ok "nvemud restarts with -c $CFG"
t "listener 127.0.0.1:4420 restored" sh -c \
	"nvemu-rpc nvmf_subsystem_get_listeners --nqn $NQN | grep -q '\"trsvcid\": \"4420\"'"
connect >$OUT 2>&1
t "nvme connect after the restart" [ $? -eq 0 ]
FILEDEV=$(ns_dev 4)
t "file namespace data intact after the restart" fio_pair "$FILEDEV" verify
nvme smart-log $CTRL >/tmp/smart 2>&1
tg "smart-log ($CTRL): temperature still 333 K after the restart" "^temperature.*333 Kelvin" \
	/tmp/smart
t "nvme disconnect" disconnect

# ---- access control
t "allow_any_host false, allow only another host" sh -c "
	nvemu-rpc nvmf_subsystem_allow_any_host --nqn $NQN --allow_any_host false &&
	nvemu-rpc nvmf_subsystem_add_host --nqn $NQN --host $OTHERNQN"
nvme connect $ADDR -n $NQN --hostnqn="$HOSTNQN" --hostid="$HOSTID" >$OUT 2>&1
rc=$?
if [ $rc -ne 0 ] && ! ctrl_dev >/dev/null; then
	ok "a host NQN not on the allow list is refused"
else
	nok "a host NQN not on the allow list is refused (rc $rc)"
	disconnect
fi
nvme connect $ADDR -n $NQN --hostnqn="$OTHERNQN" --hostid="$OTHERID" >$OUT 2>&1 && wait_ctrl
t "the allowed host NQN connects" [ $? -eq 0 ]
t "nvme disconnect" disconnect

check_sanitizer
stop_nvemud
t "nvemud stops on SIGTERM (exit $STOP_RC)" [ "$STOP_RC" = 0 ]
finish
