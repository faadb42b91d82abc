#!/bin/sh
# SPDX-License-Identifier: MIT
# nvme_namespace_create ptpl_file: checked before the namespace exists (a
# malformed state file, a directory, a place that cannot hold a file), listed,
# saved by save_config and restored by nvemud -c with the state it holds.
. "$(dirname "$0")/lib.sh"

NQN=nqn.2024-01.io.nvemu:resv

check "nvemud starts" start_daemon
expect_ok "bdev_malloc_create" bdev_malloc_create -b Rv1 --num_blocks 2048
expect_ok "nvme_subsystem_create" nvme_subsystem_create --nqn $NQN
printf 'nvemu-resv 1\nrtype 9\n' >"$T/bad.ptpl"
expect_err "a malformed state file" -32602 "ptpl_file.*not a saved reservation state" \
	nvme_namespace_create --nqn $NQN -b Rv1 -n 1 --ptpl_file "$T/bad.ptpl"
expect_err "a directory" -32602 "ptpl_file" \
	nvme_namespace_create --nqn $NQN -b Rv1 -n 1 --ptpl_file "$T"
expect_err "a directory that does not exist" -32602 "ptpl_file: cannot use .*: its directory does not exist" \
	nvme_namespace_create --nqn $NQN -b Rv1 -n 1 --ptpl_file "$T/none/x.ptpl"
expect_err "an empty path" -32602 "ptpl_file" \
	nvme_namespace_create --nqn $NQN -b Rv1 -n 1 --ptpl_file ""
expect_ok "no namespace was left behind" nvme_namespace_list --nqn $NQN
expect_eq "... the list is empty" "$(jget -c)" "[]"
expect_ok "bdev_list" bdev_list
expect_eq "... and the bdev is free again" "$(jget "$(jget -f name=Rv1 .).users")" "0"

# A state saved by an earlier life: registrant key 0xa, Write Exclusive, PTPL on.
printf 'nvemu-resv 1\nptpl 1\ngen 4\nrtype 1\nholder 1 0 %s\nreg 1 0 %s 000000000000000a\n' \
	11111111111111111111111111111111 11111111111111111111111111111111 >"$T/ns1.ptpl"
expect_ok "namespace over a saved state" \
	nvme_namespace_create --nqn $NQN -b Rv1 -n 1 --ptpl_file "$T/ns1.ptpl"
expect_ok "nvme_namespace_list" nvme_namespace_list --nqn $NQN
expect_eq "the list names the file" "$(jget 0.ptpl_file)" "$T/ns1.ptpl"
expect_ok "save_config" save_config
printf '%s\n' "$OUT" >"$T/config.json"
check "save_config keeps ptpl_file" grep -q "\"ptpl_file\": \"$T/ns1.ptpl\"" "$T/config.json"
check "the state file is untouched" grep -q "^gen 4$" "$T/ns1.ptpl"
stop_daemon
expect_eq "SIGTERM: exit 0" "$DRC" 0
check "nvemud -c restores it" start_daemon -c "$T/config.json"
expect_ok "nvme_namespace_list after the restart" nvme_namespace_list --nqn $NQN
expect_eq "... with the file" "$(jget 0.ptpl_file)" "$T/ns1.ptpl"
stop_daemon
