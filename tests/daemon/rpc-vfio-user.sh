#!/bin/sh
# SPDX-License-Identifier: MIT
# Controllers served over vfio-user, without a guest: the default
# configuration's socket, nvme_controller_create --socket (created by nvemud,
# removed on destroy, a live or foreign one refused), list/debug_get/
# save_config, suspend/snapshot/resume on such a controller, -u.
# (tests/vfio-user/run-vfu-guest.sh runs a real guest against it.)
. "$(dirname "$0")/lib.sh"

NQN=nqn.2014-08.io.nvemu:default
DEF=$T/nvemu-vfu-NVMeCtrl1.sock

check "nvemud starts with the default configuration" start_daemon
check "the default socket is next to the RPC socket" [ -S "$DEF" ]
call nvme_controller_list -c NVMeCtrl1
expect_eq "controller list shows NVMeCtrl1's socket" "$(jget 0.socket)" "$DEF"
expect_eq "no guest connected" "$(jget 0.connected)" false
call nvme_subsystem_list
expect_eq "the default subsystem's nn suits guest firmware (256)" \
	"$(printf '%s' "$OUT" | "$JSON_GET" 0.nn 2>/dev/null)" 256
check "a loud warning names the placeholder PCI vendor ID" \
	grep -q "PCI vendor ID is the placeholder" "$T/daemon.log"

expect_err "a relative socket path is refused" -32602 "absolute" \
	nvme_controller_create --nqn $NQN --socket rel.sock
check "no socket was created in the working directory" not [ -e rel.sock ]
: > "$T/plain"
expect_err "a file that is not a socket is refused" -32001 "not a socket" \
	nvme_controller_create --nqn $NQN --socket "$T/plain"
check "the file is left alone" [ -f "$T/plain" ]
expect_err "a socket this daemon serves is refused" -32001 "already serves controller NVMeCtrl1" \
	nvme_controller_create --nqn $NQN --socket "$DEF"
call nvme_controller_list
expect_eq "failed creates left no controller behind" "$(jget -l .)" 1

expect_ok "create a controller on a socket" \
	nvme_controller_create --nqn $NQN --socket "$T/c2.sock" --num_queues 4
C2=$OUT
C2=$(printf '%s' "$C2" | "$JSON_GET" .)
expect_eq "it got the next name" "$C2" NVMeCtrl2
check "nvemud created the socket" [ -S "$T/c2.sock" ]
call nvme_controller_debug_get -c "$C2"
expect_eq "debug_get has the PCIe state (socket)" "$(jget pcie.socket)" "$T/c2.sock"
expect_eq "debug_get: no vfio-user connection yet" "$(jget pcie.vfio_user.connects)" 0
expect_ok "modify num_queues of a served controller with no guest" \
	nvme_controller_modify -c "$C2" --num_queues 2
call nvme_controller_list -c "$C2"
expect_eq "it has 2 queues and is served on the same socket" \
	"$(jget 0.num_queues) $(jget 0.socket)" "2 $T/c2.sock"
check "the socket is there again" [ -S "$T/c2.sock" ]
call nvme_controller_debug_get -c "$C2"
expect_eq "debug_get: doorbells not mapped before a client" "$(jget pcie.doorbells.mapped)" false
expect_ok "a vfio-user controller takes 128 I/O queues" \
	nvme_controller_create --nqn $NQN --socket "$T/c128.sock" --num_queues 128 --name Q128
call nvme_controller_list -c Q128
expect_eq "it has 128 I/O queues" "$(jget 0.num_queues)" 128
expect_ok "destroy it" nvme_controller_destroy -c Q128
expect_err "129 I/O queues are refused" -32602 "num_queues" \
	nvme_controller_create --nqn $NQN --socket "$T/c129.sock" --num_queues 129

call save_config
check "save_config keeps the sockets" \
	sh -c 'printf "%s" "$1" | grep -q "\"socket\": *\"$2\""' x "$OUT" "$T/c2.sock"

expect_ok "suspend a served controller" nvme_controller_suspend -c "$C2"
expect_ok "snapshot it" nvme_controller_snapshot_get -c "$C2" -f "$T/snap.json"
expect_ok "resume it" nvme_controller_resume -c "$C2"

# Another process's live socket.
SOCK2=$T/sock2
"$NVEMUD" -r "$SOCK2" -l none -m none -u none >>"$T/daemon2.log" 2>&1 &
D2=$!
_i=0
while [ $_i -lt 100 ] && ! "$NVEMU_RPC" -s "$SOCK2" rpc_get_methods >/dev/null 2>&1; do
	sleep 0.05
	_i=$((_i + 1))
done
OUT=$("$NVEMU_RPC" -s "$SOCK2" nvme_controller_list -c NVMeCtrl1 2>&1)
check "a second nvemud with -u none serves NVMeCtrl1 on no socket" \
	sh -c 'printf "%s" "$1" | grep -q "\"name\": *\"NVMeCtrl1\"" && ! printf "%s" "$1" | grep -q socket' x "$OUT"
OUT=$("$NVEMU_RPC" -s "$SOCK2" nvme_controller_create --nqn $NQN --socket "$T/c2.sock" 2>&1)
check "another daemon's live socket is refused with a clear message" \
	sh -c 'printf "%s" "$1" | grep -q "live vfio-user socket"' x "$OUT"
check "and the socket still belongs to the first daemon" [ -S "$T/c2.sock" ]
kill "$D2" 2>/dev/null
wait "$D2" 2>/dev/null

"$NVEMUD" -r "$T/sock3" -l none -m none -u "$DEF" >>"$T/daemon3.log" 2>&1
check "nvemud with -u on a live socket exits with an error" [ $? -ne 0 ]
check "naming -u in its message" grep -q -- "-u PATH" "$T/daemon3.log"

expect_ok "destroy the served controller" nvme_controller_destroy -c "$C2"
check "destroy removed its socket" not [ -e "$T/c2.sock" ]
rpc nvme_subsystem_create --nqn nqn.2024-01.io.nvemu:vfu >/dev/null
expect_ok "a served controller in another subsystem" \
	nvme_controller_create --nqn nqn.2024-01.io.nvemu:vfu --socket "$T/c3.sock"
check "its socket exists" [ -S "$T/c3.sock" ]
expect_ok "force-destroy that subsystem" nvme_subsystem_destroy --nqn nqn.2024-01.io.nvemu:vfu --force
check "the socket went with it" not [ -e "$T/c3.sock" ]
check "nvemud is still up" daemon_alive
stop_daemon
check "nvemud exits cleanly" [ "$DRC" = 0 ]
check "and removes the default socket" not [ -e "$DEF" ]
