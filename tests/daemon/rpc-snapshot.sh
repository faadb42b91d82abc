#!/bin/sh
# SPDX-License-Identifier: MIT
# suspend / snapshot_get / destroy / create --snapshot / resume through the RPCs.
# (Commands in flight during the snapshot are covered by the daemon's own
# in-process tests; here the control path and the file round trip.)
. "$(dirname "$0")/lib.sh"

NQN=nqn.2024-01.io.nvemu:snap
check "nvemud starts" start_daemon
rpc bdev_malloc_create -b S0 --num_blocks 4096 >/dev/null
rpc nvme_subsystem_create --nqn $NQN >/dev/null
rpc nvme_namespace_create --nqn $NQN -b S0 -n 1 --uuid 11111111-2222-3333-4444-555555555555 >/dev/null
expect_ok "controller with 3 I/O queues" nvme_controller_create --nqn $NQN --num_queues 3 --mdts 6
C=$(jget .)
expect_ok "attach" nvme_controller_attach_ns -c "$C" -n 1
expect_err "snapshot of a running controller is refused" -32003 "suspend" \
	nvme_controller_snapshot_get -c "$C" --filename "$T/s.json"
expect_ok "suspend" nvme_controller_suspend -c "$C" --timeout_ms 1000
call nvme_controller_list --ctrl "$C"
expect_eq "listed as suspended" "$(jget 0.suspended)" true
expect_ok "snapshot_get while suspended" nvme_controller_snapshot_get -c "$C" --filename "$T/s.json"
check "snapshot file written, valid JSON" sh -c '"$1" -l . <"$2" >/dev/null' - "$JSON_GET" "$T/s.json"
call nvme_controller_debug_get -c "$C"
dbg_before=$(jget -c | sed "s/\"$C\"/NAME/g")
call nvme_controller_list --ctrl "$C"
list_before=$(jget -c)
expect_err "snapshot_get to an unwritable path fails" -32005 "" \
	nvme_controller_snapshot_get -c "$C" --filename "$T/no/such/dir/s.json"
expect_ok "destroy" nvme_controller_destroy -c "$C"
expect_err "create from a missing snapshot file fails" -32 "" \
	nvme_controller_create --nqn $NQN --snapshot "$T/missing.json"
printf '{"not":"a snapshot"}' >"$T/junk.json"
expect_err "create from a junk snapshot file fails" -32 "" \
	nvme_controller_create --nqn $NQN --snapshot "$T/junk.json"
expect_ok "create --snapshot" nvme_controller_create --nqn $NQN --snapshot "$T/s.json" --suspended
C2=$(jget .)
call nvme_controller_debug_get -c "$C2"
expect_eq "debug_get (registers, queues) identical after restore" \
	"$(jget -c | sed "s/\"$C2\"/NAME/g")" "$dbg_before"
call nvme_controller_list --ctrl "$C2"
expect_eq "controller list entry identical apart from the name" \
	"$(jget -c | sed "s/\"$C2\"/NAME/g")" "$(printf '%s' "$list_before" | sed "s/\"$C\"/NAME/g")"
expect_ok "resume" nvme_controller_resume -c "$C2"
call nvme_controller_list --ctrl "$C2"
expect_eq "running again" "$(jget 0.suspended)" false
expect_ok "modify num_queues while no host uses it" nvme_controller_modify -c "$C2" --num_queues 5
call nvme_controller_list --ctrl "$C2"
expect_eq "num_queues is now 5" "$(jget 0.num_queues)" 5
check "nvemud still running" daemon_alive
