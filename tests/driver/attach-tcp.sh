#!/bin/sh
# SPDX-License-Identifier: MIT
# bdev_nvme over NVMe/TCP between two daemons on 127.0.0.1: nvemud A serves
# a subsystem; nvemud B attaches it (bdev_nvme_attach_controller), puts a
# namespace on the resulting bdev and serves that again on another port.
# nvemu-perf --verify writes through one daemon and reads back through the
# other, both ways. Then A is killed and restarted under load: B's
# controller goes resetting, I/O fails with errors (nothing hangs), and it
# reconnects when A is back; a controller with a short ctrlr_loss_timeout_sec
# ends failed instead. Parameter errors name the field.
. "$(dirname "$0")/../daemon/lib.sh"

if [ -z "${NVEMU_PERF:-}" ] || [ ! -x "$NVEMU_PERF" ]; then
	nok "NVEMU_PERF not set or not executable"
	exit 1
fi

SA=$T/a.sock
SB=$T/b.sock
NQA=nqn.2024-01.io.nvemu:drv-a
NQB=nqn.2024-01.io.nvemu:drv-b
APID=
BPID=

ra() { "$NVEMU_RPC" -s "$SA" -t 10 "$@"; }
rb() { "$NVEMU_RPC" -s "$SB" -t 10 "$@"; }

# up SOCK PID: wait until the daemon answers (10 s).
up() {
	_i=0
	while [ $_i -lt 200 ]; do
		kill -0 "$2" 2>/dev/null || return 1
		"$NVEMU_RPC" -s "$1" -t 2 rpc_get_methods >/dev/null 2>&1 && return 0
		sleep 0.05
		_i=$((_i + 1))
	done
	return 1
}

start_a() {
	"$NVEMUD" -r "$SA" -m none -u none "$@" >>"$T/a.log" 2>&1 &
	APID=$!
	up "$SA" $APID
}

cleanup() {
	for p in $APID $BPID $PERFPID; do
		kill -TERM "$p" 2>/dev/null
	done
	wait 2>/dev/null
}
PERFPID=
trap 'cleanup; _finish' EXIT

# state_of NAME: B's controller state.
state_of() {
	rb bdev_nvme_get_controllers --name "$1" 2>/dev/null | "$JSON_GET" 0.state 2>/dev/null
}

# wait_state NAME STATE SECONDS
wait_state() {
	_i=0
	while [ $_i -lt $(($3 * 20)) ]; do
		[ "$(state_of "$1")" = "$2" ] && return 0
		sleep 0.05
		_i=$((_i + 1))
	done
	return 1
}

# perf ARGS...: nvemu-perf with its report as TAP comments.
perf() {
	"$NVEMU_PERF" --quiet "$@" >"$T/perf.out" 2>&1
	_rc=$?
	sed 's/^/# /' "$T/perf.out"
	return $_rc
}

# --- A: a 16 MiB RAM namespace on its own listener
check "nvemud A starts" start_a -l none
check "A: bdev, subsystem, namespace" sh -c '
	"$1" -s "$2" bdev_malloc_create --name M0 --num_blocks 32768 --block_size 512 >/dev/null &&
	"$1" -s "$2" nvme_subsystem_create --nqn "$3" --serial_number DRVA0001 >/dev/null &&
	"$1" -s "$2" nvme_namespace_create --nqn "$3" --bdev_name M0 --nsid 1 >/dev/null' \
	- "$NVEMU_RPC" "$SA" $NQA
PA=$(ra nvmf_subsystem_add_listener --nqn $NQA --trtype tcp --traddr 127.0.0.1 --trsvcid 0 \
	--adrfam ipv4 | "$JSON_GET" trsvcid)
check "A listens on 127.0.0.1:$PA" [ "${PA:-0}" -gt 0 ]

# --- B attaches A
"$NVEMUD" -r "$SB" -l none -m none -u none >>"$T/b.log" 2>&1 &
BPID=$!
check "nvemud B starts" up "$SB" $BPID
SOCK=$SB
expect_ok "B: bdev_nvme_attach_controller" bdev_nvme_attach_controller --name NA --trtype tcp \
	--traddr 127.0.0.1 --trsvcid "$PA" --subnqn $NQA --adrfam ipv4 --num_io_queues 2
expect_eq "... returns the namespace's bdev" "$(jget 0)" NAn1
call bdev_nvme_get_controllers
expect_eq "get_controllers: enabled, serial DRVA0001, 2 queues" \
	"$(jget 0.state) $(jget 0.serial_number) $(jget 0.num_io_queues)" "enabled DRVA0001 2"
expect_eq "get_controllers: namespace 1 is bdev NAn1 of 32768 blocks" \
	"$(jget 0.namespaces.0.bdev_name) $(jget 0.namespaces.0.num_blocks)" "NAn1 32768"
call bdev_list --name NAn1
expect_eq "bdev_list: NAn1 is an nvme bdev" "$(jget 0.type)" nvme
expect_err "attach: the same name again" -32001 "already attached" bdev_nvme_attach_controller \
	--name NA --trtype tcp --traddr 127.0.0.1 --trsvcid "$PA" --subnqn $NQA
expect_err "attach: unknown trtype names the field" -32602 "trtype" bdev_nvme_attach_controller \
	--name X --trtype rdma --traddr 127.0.0.1 --subnqn $NQA
expect_err "attach: tcp without subnqn" -32602 "subnqn" bdev_nvme_attach_controller \
	--name X --trtype tcp --traddr 127.0.0.1 --trsvcid "$PA"
expect_err "attach: a host name instead of an address" -32602 "traddr" \
	bdev_nvme_attach_controller --name X --trtype tcp --traddr localhost --trsvcid "$PA" \
	--subnqn $NQA
expect_err "attach: a wrong subsystem NQN" -32005 "Connect" bdev_nvme_attach_controller \
	--name X --trtype tcp --traddr 127.0.0.1 --trsvcid "$PA" --subnqn nqn.2024-01.io.nvemu:none
expect_err "attach: nobody listening" -32005 "refused" bdev_nvme_attach_controller \
	--name X --trtype tcp --traddr 127.0.0.1 --trsvcid 1 --subnqn $NQA
call bdev_nvme_attach_controller --name X --trtype vfio-user --traddr "$T/none"
if printf '%s' "$ERR" | grep -q "not in this build"; then
	ok "attach: vfio-user without its transport: a clear error"
else
	check "attach: vfio-user to a missing socket fails" [ "$RC" -ne 0 ]
fi
check "B has only NA after the failed attaches" \
	[ "$(rb bdev_nvme_get_controllers | "$JSON_GET" -l .)" = 1 ]

# --- B exports NAn1 again over NVMe/TCP
check "B: subsystem with a namespace on NAn1" sh -c '
	"$1" -s "$2" nvme_subsystem_create --nqn "$3" --serial_number DRVB0001 >/dev/null &&
	"$1" -s "$2" nvme_namespace_create --nqn "$3" --bdev_name NAn1 --nsid 1 >/dev/null' \
	- "$NVEMU_RPC" "$SB" $NQB
PB=$(rb nvmf_subsystem_add_listener --nqn $NQB --trtype tcp --traddr 127.0.0.1 --trsvcid 0 \
	--adrfam ipv4 | "$JSON_GET" trsvcid)
check "B listens on 127.0.0.1:$PB" [ "${PB:-0}" -gt 0 ]
TA="trtype:tcp traddr:127.0.0.1 trsvcid:$PA subnqn:$NQA"
TB="trtype:tcp traddr:127.0.0.1 trsvcid:$PB subnqn:$NQB"

check "nvemu-perf --verify: 4 KiB writes through B (read back through B)" \
	perf -r "$TB" -w write -V -o 4096 -q 8 -N 1024 --seed 7
check "nvemu-perf --verify: the same blocks read through A" \
	perf -r "$TA" -w read -V -o 4096 -q 8 -N 1024 --seed 7
check "nvemu-perf --verify: 64 KiB writes through A, 2 queues, digests" \
	perf -r "$TA" -w write -V -o 65536 -q 4 -P 2 -N 128 --seed 9 --hdgst --ddgst
check "nvemu-perf --verify: read back through B" \
	perf -r "$TB" -w read -V -o 65536 -q 4 -N 128 --seed 9
perf -r "$TB" -w read -V -o 65536 -q 4 -N 16 --seed 10 >"$T/bad.out" 2>&1
check "nvemu-perf --verify: the wrong seed fails (exit 1, miscompares)" \
	sh -c '[ $1 -eq 1 ] && grep -q "miscompares 16" "$2"' - $? "$T/bad.out"
check "random mixed load through B for 2 s" \
	perf -r "$TB" -w randrw -M 70 -o 4096 -q 16 -t 2

# --- save_config and detach
call save_config
check "save_config keeps bdev_nvme_attach_controller (before the namespace using it)" \
	sh -c 'printf "%s" "$1" | tr -d " \n" |
		grep -q "bdev_nvme_attach_controller.*\"trsvcid\":\"$2\".*nvme_namespace_create"' \
	- "$OUT" "$PA"
expect_err "detach while a namespace uses its bdev" -32002 "used by" \
	bdev_nvme_detach_controller --name NA

# --- namespaces coming and going on A: AEN, rescan, bdevs follow (unused ones)
# wait_bdev NAME yes|no: until B has (or has not) the bdev, 5 s.
wait_bdev() {
	_i=0
	while [ $_i -lt 100 ]; do
		if rb bdev_list --name "$1" >/dev/null 2>&1; then _has=yes; else _has=no; fi
		[ $_has = "$2" ] && return 0
		sleep 0.05
		_i=$((_i + 1))
	done
	return 1
}
check "A: a second namespace" sh -c '
	"$1" -s "$2" bdev_malloc_create --name M1 --num_blocks 2048 --block_size 512 >/dev/null &&
	"$1" -s "$2" nvme_namespace_create --nqn "$3" --bdev_name M1 --nsid 2 >/dev/null' \
	- "$NVEMU_RPC" "$SA" $NQA
check "B: bdev NAn2 appears (Namespace Attribute Changed, rescan)" wait_bdev NAn2 yes
check "nvemu-perf through A on namespace 2" perf -r "$TA" --nsid 2 -w write -V -o 4096 -N 64
check "A: namespace 2 destroyed" sh -c '"$1" -s "$2" nvme_namespace_destroy --nqn "$3" --nsid 2 \
	>/dev/null' - "$NVEMU_RPC" "$SA" $NQA
check "B: bdev NAn2 goes away" wait_bdev NAn2 no
call bdev_nvme_get_controllers --name NA
expect_eq "get_controllers: one namespace again" "$(jget -l 0.namespaces)" 1

# --- A goes away under load, and comes back
ra save_config --filename "$T/a.json" >/dev/null
expect_ok "B: a second controller with ctrlr_loss_timeout_sec 1" bdev_nvme_attach_controller \
	--name NS --trtype tcp --traddr 127.0.0.1 --trsvcid "$PA" --subnqn $NQA \
	--ctrlr_loss_timeout_sec 1 --reconnect_delay_sec 1
perf -r "$TB" -w randread -o 4096 -q 16 -t 6 >"$T/load.out" 2>&1 &
PERFPID=$!
sleep 1
kill -KILL $APID
wait $APID 2>/dev/null
check "A killed: B's controller resets" wait_state NA resetting 5
sleep 2.5
check "A away longer than 1 s: NS is failed" wait_state NS failed 5
check "A restarts with its configuration (the same port)" start_a -c "$T/a.json"
check "B's controller reconnects" wait_state NA enabled 10
_i=0
while kill -0 $PERFPID 2>/dev/null && [ $_i -lt 300 ]; do
	sleep 0.05
	_i=$((_i + 1))
done
if kill -0 $PERFPID 2>/dev/null; then
	nok "nvemu-perf under the outage ends in time"
	kill -KILL $PERFPID
else
	ok "nvemu-perf under the outage ends in time"
fi
wait $PERFPID
PRC=$?
PERFPID=
check "... and reports the failed I/O (exit 1, errors > 0, I/O done)" sh -c '
	[ $1 -eq 1 ] && grep -q "errors [1-9]" "$2" && ! grep -q "^I/Os 0 " "$2"' - $PRC "$T/load.out"
call bdev_nvme_get_controllers --name NA
check "get_controllers counts the reset" [ "$(jget 0.resets)" -ge 1 ]
check "I/O through B works again (verify)" \
	perf -r "$TB" -w write -V -o 4096 -q 4 -N 256 --seed 11
check "NS stays failed after A is back (no retry past the loss timeout)" \
	[ "$(state_of NS)" = failed ]
expect_ok "detach the failed controller" bdev_nvme_detach_controller --name NS
check "B is alive" kill -0 $BPID
check "A is alive" kill -0 $APID
