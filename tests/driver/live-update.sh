#!/bin/sh
# SPDX-License-Identifier: MIT
# Live update between two nvemud binaries, seen by a real vfio-user client:
# nvemud A1 serves a controller (file bdev) over vfio-user; nvemud B's host
# driver attaches it and exports it over NVMe/TCP, where nvemu-perf writes
# with verification. Under that load A1 is replaced: A2 starts with
# --take-over, A1's controller is suspended with live_update_notifier and
# handed over (nvemud_live_update), A1 exits, A2 resumes it on the same RPC
# socket. The writes finish without an error, read back verified through A2,
# and B's driver never reset the controller (it saw only a pause).
. "$(dirname "$0")/../daemon/lib.sh"

if [ -z "${NVEMU_PERF:-}" ] || [ ! -x "$NVEMU_PERF" ]; then
	nok "NVEMU_PERF not set or not executable"
	exit 1
fi

SA=$T/a.sock
SB=$T/b.sock
VFU=$T/a-vfu.sock
LU=$T/lu.sock
NQA=nqn.2024-01.io.nvemu:lu-a
NQB=nqn.2024-01.io.nvemu:lu-b
A1=
A2=
BPID=
PPID_=

ra() { "$NVEMU_RPC" -s "$SA" -t 30 "$@"; }
rb() { "$NVEMU_RPC" -s "$SB" -t 30 "$@"; }

up() {
	_i=0
	while [ $_i -lt 400 ]; do
		kill -0 "$2" 2>/dev/null || return 1
		"$NVEMU_RPC" -s "$1" -t 2 rpc_get_methods >/dev/null 2>&1 && return 0
		sleep 0.05
		_i=$((_i + 1))
	done
	return 1
}

gone() {
	_i=0
	while kill -0 "$1" 2>/dev/null && [ $_i -lt 200 ]; do sleep 0.05; _i=$((_i + 1)); done
	! kill -0 "$1" 2>/dev/null
}

cleanup() {
	for p in $PPID_ $A1 $A2 $BPID; do
		kill -TERM "$p" 2>/dev/null
	done
	wait 2>/dev/null
}
trap 'cleanup; _finish' EXIT

perf() {
	"$NVEMU_PERF" --quiet "$@" >"$T/perf.out" 2>&1
	_rc=$?
	sed 's/^/# /' "$T/perf.out"
	return $_rc
}

truncate -s 64M "$T/disk.img"
"$NVEMUD" -r "$SA" -l none -m none -u none >>"$T/a1.log" 2>&1 &
A1=$!
check "nvemud A1 starts" up "$SA" $A1
check "A1: file bdev, subsystem, namespace" sh -c '
	"$1" -s "$2" bdev_file_create --name F0 --filename "$4" --block_size 512 >/dev/null &&
	"$1" -s "$2" nvme_subsystem_create --nqn "$3" --serial_number LUA00001 >/dev/null &&
	"$1" -s "$2" nvme_namespace_create --nqn "$3" --bdev_name F0 --nsid 1 >/dev/null' \
	- "$NVEMU_RPC" "$SA" $NQA "$T/disk.img"
CA=$(ra nvme_controller_create --nqn $NQA --socket "$VFU" --num_queues 2 --name LuCtrl | "$JSON_GET" .)
expect_eq "A1: controller on a vfio-user socket" "$CA" LuCtrl
check "A1: namespace attached" sh -c '"$1" -s "$2" nvme_controller_attach_ns -c LuCtrl -n 1 >/dev/null' \
	- "$NVEMU_RPC" "$SA"

"$NVEMUD" -r "$SB" -l none -m none -u none >>"$T/b.log" 2>&1 &
BPID=$!
check "nvemud B starts" up "$SB" $BPID
SOCK=$SB
expect_ok "B attaches A1's controller over vfio-user" bdev_nvme_attach_controller --name NV \
	--trtype vfio-user --traddr "$VFU" --num_io_queues 2
check "B exports it over NVMe/TCP" sh -c '
	"$1" -s "$2" nvme_subsystem_create --nqn "$3" --serial_number LUB00001 >/dev/null &&
	"$1" -s "$2" nvme_namespace_create --nqn "$3" --bdev_name NVn1 --nsid 1 >/dev/null' \
	- "$NVEMU_RPC" "$SB" $NQB
PB=$(rb nvmf_subsystem_add_listener --nqn $NQB --trtype tcp --traddr 127.0.0.1 --trsvcid 0 \
	--adrfam ipv4 | "$JSON_GET" trsvcid)
TB="trtype:tcp traddr:127.0.0.1 trsvcid:$PB subnqn:$NQB"
check "verified writes before the update" perf -r "$TB" -w write -V -o 4096 -q 8 -N 2048 --seed 11

# --- the refusals first
SOCK=$SA
expect_err "nvemud_live_update while the guest's controller is not suspended for it" -32003 \
	"LuCtrl serves a guest: suspend it with live_update_notifier" nvemud_live_update --socket "$LU"
expect_err "resume --live_update of a controller not suspended for one" -32003 "not suspended" \
	nvme_controller_resume -c LuCtrl --live_update 1
expect_err "live_update_notifier with admin_only" -32602 "live_update_notifier" \
	nvme_controller_suspend -c LuCtrl --live_update_notifier 1 --admin_only 1
expect_ok "suspend with live_update_notifier" nvme_controller_suspend -c LuCtrl --live_update_notifier 1
expect_err "nvemud_live_update with nobody on the socket: refused, naming it" -32005 "take-over" \
	nvemud_live_update --socket "$LU"
expect_ok "A1 goes on: resume" nvme_controller_resume -c LuCtrl
check "verified reads through A1" perf -r "$TB" -w read -V -o 4096 -q 8 -N 2048 --seed 11

# --- the update, under load
"$NVEMU_PERF" --quiet -r "$TB" -w write -V -o 4096 -q 16 -N 30000 --seed 21 >"$T/perf-load.out" 2>&1 &
PPID_=$!
sleep 1
check "load is running" kill -0 $PPID_
"$NVEMUD" --take-over "$LU" -r "$SA" -l none -m none -u none >>"$T/a2.log" 2>&1 &
A2=$!
_i=0
while [ ! -S "$LU" ] && [ $_i -lt 200 ]; do sleep 0.05; _i=$((_i + 1)); done
check "A2 waits on its --take-over socket" [ -S "$LU" ]
T0=$(date +%s%N)
expect_ok "A1: suspend LuCtrl with live_update_notifier (drains)" \
	nvme_controller_suspend -c LuCtrl --live_update_notifier 1
expect_ok "A1: nvemud_live_update hands everything to A2" nvemud_live_update --socket "$LU"
expect_eq "A1 handed over LuCtrl" "$(jget handed_over.0)" LuCtrl
check "A1 exits" gone $A1
check "A2 serves the same RPC socket" up "$SA" $A2
expect_ok "A2: resume LuCtrl --live_update" nvme_controller_resume -c LuCtrl --live_update 1
PAUSE_MS=$((($(date +%s%N) - T0) / 1000000))
diag "guest I/O paused for about $PAUSE_MS ms"
wait $PPID_
PRC=$?
PPID_=
sed 's/^/# /' "$T/perf-load.out"
expect_eq "the verified writes running across the update finished without an error" "$PRC" 0
check "they read back verified through A2" perf -r "$TB" -w read -V -o 4096 -q 16 -N 30000 --seed 21
check "new verified writes through A2" perf -r "$TB" -w write -V -o 131072 -q 4 -N 256 --seed 31
check "read back" perf -r "$TB" -w read -V -o 131072 -q 4 -N 256 --seed 31

SOCK=$SB
call bdev_nvme_get_controllers --name NV
expect_eq "B's driver never reset the controller, still enabled" "$(jget 0.resets) $(jget 0.state)" "0 enabled"
SOCK=$SA
call nvme_controller_list -c LuCtrl
expect_eq "A2 lists LuCtrl on the same socket, connected, running" \
	"$(jget 0.socket) $(jget 0.connected) $(jget 0.suspended)" "$VFU true false"
call nvme_controller_debug_get -c LuCtrl
check "A2's server took the connection over (no new connect)" [ "$(jget pcie.vfio_user.connects)" = 1 ]
check "A1 logged the handover" grep -q "handed over, exiting" "$T/a1.log"
check "A2 logged the take-over" grep -q "taken over (guest connected)" "$T/a2.log"

# --- a refused handover changes nothing on the old side
"$NVEMUD" --take-over "$T/lu2.sock" -r "$T/x.sock" -l none -m none -u none >>"$T/a3.log" 2>&1 &
A3=$!
_i=0
while [ ! -S "$T/lu2.sock" ] && [ $_i -lt 200 ]; do sleep 0.05; _i=$((_i + 1)); done
expect_ok "A2: suspend for a second update" nvme_controller_suspend -c LuCtrl --live_update_notifier 1
kill -TERM $A3 2>/dev/null
check "a waiting --take-over daemon stops on SIGTERM" gone $A3
expect_err "handover to a daemon that went away fails, naming the socket" -32005 "socket" \
	nvemud_live_update --socket "$T/lu2.sock"
expect_ok "A2 still serves: resume" nvme_controller_resume -c LuCtrl --live_update 1
check "I/O still verified through A2" perf -r "$TB" -w read -V -o 131072 -q 4 -N 256 --seed 31
