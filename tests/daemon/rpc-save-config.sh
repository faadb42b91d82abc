#!/bin/sh
# SPDX-License-Identifier: MIT
# save_config, restart with -c, identical lists (UUIDs included, generated ones too).
. "$(dirname "$0")/lib.sh"

NQN=nqn.2024-01.io.nvemu:saved
UUID=0b5d2f7e-8f0c-4c1a-9d4e-3a2b1c0d9e8f

check "nvemud starts" start_daemon
truncate -s 8M "$T/disk.img"
expect_ok "bdev_malloc_create 4K blocks" bdev_malloc_create -b Ram1 --num_blocks 4096 --block_size 4096
expect_ok "bdev_null_create" bdev_null_create -b Null1 --num_blocks 100000
expect_ok "bdev_file_create" bdev_file_create -b File1 --filename "$T/disk.img" --block_size 512
expect_ok "bdev_malloc_create (read-only file next)" bdev_malloc_create -b Ram2 --num_blocks 64
: >"$T/ro.img"; truncate -s 1M "$T/ro.img"
expect_ok "bdev_file_create --read_only" bdev_file_create -b Ro1 --filename "$T/ro.img" --read_only
expect_ok "nvme_subsystem_create with every option" nvme_subsystem_create --nqn $NQN \
	--serial_number SAVED0000000000001 --model_number "saved model" --nn 64 --mnan 16
expect_ok "namespace with a given UUID" nvme_namespace_create --nqn $NQN -b Ram1 -n 3 --uuid $UUID
expect_ok "namespace with a generated UUID" nvme_namespace_create --nqn $NQN -b File1 -n 7
expect_ok "namespace on a null bdev" nvme_namespace_create --nqn $NQN -b Null1 -n 9
expect_ok "namespace on a read-only file" nvme_namespace_create --nqn $NQN -b Ro1 -n 10
expect_ok "controller with non-default options" nvme_controller_create --nqn $NQN --num_queues 4 \
	--mdts 5 --fw_slots 2 --write_zeroes 1 --compare 1 --deallocate_dsm 0 --suspended
C1=$(jget .)
expect_ok "a second controller" nvme_controller_create --nqn $NQN --num_queues 2
C2=$(jget .)
expect_ok "attach 3 to $C1" nvme_controller_attach_ns -c "$C1" -n 3
expect_ok "attach 7 to $C1" nvme_controller_attach_ns -c "$C1" -n 7
expect_ok "attach 9 to $C2" nvme_controller_attach_ns -c "$C2" -n 9
expect_ok "nvme_subsystem_set_health" nvme_subsystem_set_health --nqn $NQN --temperature 330 \
	--available_spare 80 --percentage_used 5 --critical_warning 0

before=$(state)
expect_ok "save_config" save_config
printf '%s\n' "$OUT" >"$T/config.json"
check "save_config output is a JSON object" sh -c '"$1" -l . <"$2" >/dev/null' - "$JSON_GET" "$T/config.json"
check "the saved config names the generated UUID" \
	grep -q "$(rpc nvme_namespace_list --nqn $NQN | "$JSON_GET" 1.uuid)" "$T/config.json"
saved=$(printf '%s' "$OUT" | "$JSON_GET" -c)

check "SIGTERM" stop_daemon TERM
check "socket removed" [ ! -e "$SOCK" ]

check "nvemud -c config.json starts" start_daemon -c "$T/config.json"
after=$(state)
for m in bdev_list nvme_subsystem_list nvme_namespace_list nvme_controller_list; do
	expect_eq "$m identical after restart" "$(printf '%s\n' "$after" | grep "^$m: ")" \
		"$(printf '%s\n' "$before" | grep "^$m: ")"
done
call save_config
expect_eq "save_config identical after restart" "$(jget -c)" "$saved"

# And a second generation: restore of a restore is still identical.
check "SIGTERM again" stop_daemon TERM
check "restart from the same file" start_daemon -c "$T/config.json"
expect_eq "state identical after the second restart" "$(state)" "$before"

# -c skips the default: an empty-ish config gives an empty daemon.
stop_daemon TERM
rpc_empty_cfg() {
	start_daemon || return 1
	call nvme_subsystem_list
	n=$(jget -l .)
	while [ "$n" -gt 0 ]; do
		n=$((n - 1))
		rpc nvme_subsystem_destroy --nqn "$(jget $n.nqn)" --force >/dev/null || return 1
	done
	call bdev_list
	n=$(jget -l .)
	while [ "$n" -gt 0 ]; do
		n=$((n - 1))
		rpc bdev_delete -b "$(jget $n.name)" >/dev/null || return 1
	done
	rpc save_config >"$T/empty.json" && stop_daemon TERM
}
check "a config with nothing in it can be saved" rpc_empty_cfg
check "nvemud -c empty config starts" start_daemon -c "$T/empty.json"
call nvme_subsystem_list
expect_eq "-c skips the default configuration (no subsystems)" "$(jget -l .)" 0
stop_daemon TERM

printf '{"subsystems": [' >"$T/bad.json"
"$NVEMUD" -r "$SOCK" -c "$T/bad.json" >"$T/bad.out" 2>&1
check "nvemud -c with a truncated file exits non-zero" [ $? -ne 0 ]
check "... naming the file" grep -q "bad.json" "$T/bad.out"
check "... and leaves no socket" [ ! -e "$SOCK" ]

# A backing file missing at start-up: that bdev, its namespace and attachment
# are skipped with an error naming them; everything else starts.
truncate -s 4M "$T/keep.img" "$T/gone.img"
check "nvemud starts (for the missing-file case)" start_daemon
expect_ok "subsystem" nvme_subsystem_create --nqn $NQN
expect_ok "file bdev Keep" bdev_file_create -b Keep -f "$T/keep.img"
expect_ok "file bdev Gone" bdev_file_create -b Gone -f "$T/gone.img"
expect_ok "namespace on Keep" nvme_namespace_create --nqn $NQN -b Keep -n 1
expect_ok "namespace on Gone" nvme_namespace_create --nqn $NQN -b Gone -n 2
expect_ok "controller" nvme_controller_create --nqn $NQN --name Cm
expect_ok "attach 1" nvme_controller_attach_ns -c Cm -n 1
expect_ok "attach 2" nvme_controller_attach_ns -c Cm -n 2
rpc save_config -f "$T/missing.json" >/dev/null
stop_daemon TERM
rm -f "$T/gone.img"
: >"$T/daemon.log"
check "nvemud -c starts although a backing file is missing" start_daemon -c "$T/missing.json"
check "the log names the skipped bdev and its file" grep -q "bdev Gone skipped: file $T/gone.img" "$T/daemon.log"
check "the log says what was skipped" grep -q "item(s) skipped" "$T/daemon.log"
call bdev_list
check "bdev Keep is there" jhas name=Keep
check "bdev Gone is not" not jhas name=Gone
call nvme_namespace_list --nqn $NQN
expect_eq "only the namespace on Keep" "$(jget -l .)/$(jget 0.nsid)" "1/1"
call nvme_controller_list -c Cm
expect_eq "the controller has the namespace that is left" "$(jget 0.namespaces)" "[1]"
stop_daemon TERM

# Port ids are handed out anew on reload: a controller on a later port still reloads.
check "nvemud starts (for the port-id case)" start_daemon
expect_ok "subsystem" nvme_subsystem_create --nqn $NQN
expect_ok "port 0" nvme_subsystem_add_port --nqn $NQN -t pcie
expect_ok "port 1" nvme_subsystem_add_port --nqn $NQN -t pcie --port_number 2
expect_ok "remove port 0" nvme_subsystem_remove_port --nqn $NQN --port 0
expect_ok "a controller on port 1" nvme_controller_create --nqn $NQN --port 1 --name Cp
call save_config
printf '%s\n' "$OUT" >"$T/ports.json"
ports_saved=$(jget -c)
stop_daemon TERM
check "nvemud -c of that configuration starts" start_daemon -c "$T/ports.json"
call save_config
expect_eq "and saves it back identically" "$(jget -c)" "$ports_saved"
stop_daemon TERM
