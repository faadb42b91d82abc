#!/bin/sh
# SPDX-License-Identifier: MIT
# The NVIDIA SNAP sequence (seed 004) replayed through nvemu-rpc, checked at
# every step, then the teardown orders SNAP forbids, which must fail cleanly.
. "$(dirname "$0")/lib.sh"

NQN=nqn.2022-10.io.nvda.nvme:0
UUID=263826ad-19a3-4feb-bc25-4bc81ee7749e

check "nvemud starts on a private socket" start_daemon

# --- bring-up
expect_ok "bdev_malloc_create nvme0n1" bdev_malloc_create -b nvme0n1 --num_blocks 8192 --block_size 512
call bdev_list -b nvme0n1
expect_eq "bdev_list shows nvme0n1 with 8192 blocks" \
	"$(jget 0.name) $(jget 0.num_blocks) $(jget 0.block_size)" "nvme0n1 8192 512"

expect_ok "nvme_subsystem_create" nvme_subsystem_create --nqn $NQN --serial_number SNAP0001 \
	--model_number "nvemu snap"
call nvme_subsystem_list
i=$(jget -f nqn=$NQN .)
check "nvme_subsystem_list shows the new subsystem" [ -n "$i" ]
expect_eq "subsystem serial/model number as given" \
	"$(jget $i.serial_number)/$(jget $i.model_number)" "SNAP0001/nvemu snap"

expect_ok "nvme_namespace_create -b nvme0n1 -n 1 --uuid" nvme_namespace_create -b nvme0n1 -n 1 \
	--nqn $NQN --uuid $UUID
call nvme_namespace_list --nqn $NQN
expect_eq "nvme_namespace_list: one namespace" "$(jget -l .)" 1
expect_eq "namespace nsid/bdev/uuid as created" \
	"$(jget 0.nsid) $(jget 0.bdev_name) $(jget 0.uuid)" "1 nvme0n1 $UUID"

expect_ok "nvme_controller_create --suspended" nvme_controller_create --nqn $NQN --suspended
CTRL=$(printf '%s' "$OUT" | "$JSON_GET" .)
check "controller name is NVMeCtrlN ($CTRL)" quiet expr "$CTRL" : 'NVMeCtrl[1-9][0-9]*$'
call nvme_controller_list --ctrl "$CTRL"
expect_eq "nvme_controller_list --ctrl: one entry, suspended" \
	"$(jget -l .) $(jget 0.name) $(jget 0.nqn) $(jget 0.suspended)" "1 $CTRL $NQN true"

expect_ok "nvme_controller_attach_ns -c $CTRL -n 1" nvme_controller_attach_ns -c "$CTRL" -n 1
expect_eq "attach_ns result is true" "$OUT" true
expect_ok "nvme_controller_resume -c $CTRL" nvme_controller_resume -c "$CTRL"
call nvme_controller_list --nqn $NQN
i=$(jget -f name="$CTRL" .)
expect_eq "after resume: controller not suspended, namespace 1 attached" \
	"$(jget $i.suspended) $(jget $i.namespaces)" "false [1]"
call nvme_controller_debug_get -c "$CTRL"
check "nvme_controller_debug_get has CC, CSTS and queues" \
	sh -c '[ -n "$1" ]' - "$(jget CC)$(jget CSTS)" 
check "debug_get has per-queue arrays (sqs, cqs)" \
	sh -c 'printf "%s" "$1" | grep -q "\"sqs\"" && printf "%s" "$1" | grep -q "\"cqs\""' - "$OUT"
call nvme_controller_iostat -c "$CTRL"
expect_eq "nvme_controller_iostat: totals are zero on an idle controller" \
	"$(jget read_io_count) $(jget write_io_count) $(jget flush_io_count)" "0 0 0"

# --- SNAP's forbidden teardown orders: each refused, with a clear message, nothing changed
before=$(state)
expect_err "namespace_destroy while attached is refused" -32002 "attached" \
	nvme_namespace_destroy -n 1 --nqn $NQN
expect_err "subsystem_destroy with controllers and namespaces is refused" -32002 "$NQN" \
	nvme_subsystem_destroy --nqn $NQN
expect_err "bdev_delete of a bdev used by a namespace is refused" -32002 "nvme0n1" \
	bdev_delete -b nvme0n1
expect_err "namespace_create with an NSID in use is refused" -32001 "nsid" \
	nvme_namespace_create -b nvme0n1 -n 1 --nqn $NQN
expect_err "attach of an unknown NSID is refused" -32000 "" \
	nvme_controller_attach_ns -c "$CTRL" -n 7
expect_err "attach_ns on an unknown controller is refused" -32000 "NVMeCtrl999" \
	nvme_controller_attach_ns -c NVMeCtrl999 -n 1
expect_err "resume of a running controller is refused" -32003 "" \
	nvme_controller_resume -c "$CTRL"
expect_err "snapshot_get of a running controller is refused" -32003 "suspend" \
	nvme_controller_snapshot_get -c "$CTRL" --filename "$T/snap.json"
check "no snapshot file was written" [ ! -e "$T/snap.json" ]
expect_eq "state unchanged by the refused calls" "$(state)" "$before"

# --- detach/attach keeps the UUID
expect_ok "nvme_controller_detach_ns -c $CTRL -n 1" nvme_controller_detach_ns -c "$CTRL" -n 1
expect_eq "detach_ns result is true" "$OUT" true
call nvme_controller_detach_ns -c "$CTRL" -n 1
check "second detach_ns answers false or an error" either "$OUT" = false "$RC" = 1
expect_ok "re-attach" nvme_controller_attach_ns -c "$CTRL" -n 1
expect_ok "detach again" nvme_controller_detach_ns -c "$CTRL" -n 1
call nvme_namespace_list --nqn $NQN
expect_eq "UUID unchanged across detach/attach" "$(jget 0.uuid)" "$UUID"

# --- the SNAP teardown
expect_ok "nvme_controller_destroy -c $CTRL" nvme_controller_destroy -c "$CTRL"
call nvme_controller_list --ctrl "$CTRL"
check "destroyed controller is gone from nvme_controller_list" \
	either "$RC" = 1 "$(jget -l . 2>/dev/null)" = 0
expect_ok "nvme_namespace_destroy -n 1" nvme_namespace_destroy -n 1 --nqn $NQN
call nvme_namespace_list --nqn $NQN
expect_eq "no namespaces left" "$(jget -l .)" 0
expect_ok "nvme_subsystem_destroy" nvme_subsystem_destroy --nqn $NQN
call nvme_subsystem_list
check "subsystem gone from nvme_subsystem_list" not jhas nqn=$NQN
expect_ok "bdev_delete nvme0n1 once unused" bdev_delete -b nvme0n1
expect_err "bdev_delete twice is refused" -32000 "nvme0n1" bdev_delete -b nvme0n1
expect_err "nvme_namespace_list of a destroyed subsystem" -32000 "$NQN" \
	nvme_namespace_list --nqn $NQN

# --- force: subsystem_destroy --force takes controllers and namespaces with it
rpc bdev_malloc_create -b nvme1n1 --num_blocks 1024 >/dev/null
rpc nvme_subsystem_create --nqn $NQN >/dev/null
rpc nvme_namespace_create -b nvme1n1 -n 5 --nqn $NQN >/dev/null
CTRL2=$(rpc nvme_controller_create --nqn $NQN --suspended | "$JSON_GET" .)
rpc nvme_controller_attach_ns -c "$CTRL2" -n 5 >/dev/null
check "a second controller gets a new name ($CTRL2)" [ -n "$CTRL2" ] && [ "$CTRL2" != "$CTRL" ]
expect_ok "nvme_subsystem_destroy --force" nvme_subsystem_destroy --nqn $NQN --force
call nvme_controller_list --ctrl "$CTRL2"
check "its controller is gone" either "$RC" = 1 "$(jget -l . 2>/dev/null)" = 0
call bdev_list -b nvme1n1
expect_eq "its bdev is free again (0 users)" "$(jget 0.users)" 0
expect_ok "and can be deleted" bdev_delete -b nvme1n1
check "nvemud still running" daemon_alive
