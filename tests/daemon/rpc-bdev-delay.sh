#!/bin/sh
# SPDX-License-Identifier: MIT
# bdev_delay_create / bdev_delay_delete: bounds named by field, the base held
# while a delay bdev uses it, and save_config re-creating it after its base.
. "$(dirname "$0")/lib.sh"

NQN=nqn.2024-01.io.nvemu:delay

check "nvemud starts" start_daemon
expect_ok "base RAM bdev" bdev_malloc_create -b Base --num_blocks 8192 --block_size 4096
expect_ok "bdev_delay_create with one latency for all I/O" bdev_delay_create -b Slow \
	--base_bdev_name Base --latency_us 30000
expect_eq "it returns its name" "$OUT" '"Slow"'
expect_ok "bdev_delay_create with separate read and write latencies" bdev_delay_create -b Slow2 \
	--base_bdev_name Base --read_latency_us 1000 --write_latency_us 10000000
call bdev_list -b Slow
expect_eq "listed as type delay" "$(jget 0.type)" delay
expect_eq "with its base's geometry" "$(jget 0.num_blocks)/$(jget 0.block_size)" 8192/4096
call bdev_list -b Base
expect_eq "the base counts both delay bdevs as users" "$(jget 0.users)" 2
call bdev_delay_list -b Slow
expect_eq "bdev_delay_list: base, latencies, idle counters" \
	"$(jget 0.base_bdev_name) $(jget 0.read_latency_us) $(jget 0.write_latency_us) $(jget 0.inflight) $(jget 0.completed)" \
	"Base 30000 30000 0 0"
expect_ok "bdev_delay_update_latency of the reads only" bdev_delay_update_latency -b Slow \
	--read_latency_us 40000
call bdev_delay_list
expect_eq "bdev_delay_list lists both, the new read latency kept apart from the write one" \
	"$(jget -l .) $(jget 0.read_latency_us) $(jget 0.write_latency_us)" "2 40000 30000"

# Errors change nothing and name the field.
before=$(state)
expect_err "read latency over 10 s" -32602 "read_latency_us" bdev_delay_create -b D1 \
	--base_bdev_name Base --read_latency_us 10000001
expect_err "write latency over 10 s" -32602 "write_latency_us" bdev_delay_create -b D1 \
	--base_bdev_name Base --write_latency_us 10000001
expect_err "latency over 10 s" -32602 "latency_us" bdev_delay_create -b D1 \
	--base_bdev_name Base --latency_us 99999999999
expect_err "negative latency" -32602 "latency_us" bdev_delay_create -b D1 \
	--base_bdev_name Base --latency_us -1
expect_err "no base_bdev_name" -32602 "base_bdev_name" bdev_delay_create -j '{"name":"D1"}'
expect_err "unknown base" -32000 "base_bdev_name" bdev_delay_create -b D1 --base_bdev_name Nope
expect_err "name already used" -32001 "name" bdev_delay_create -b Base --base_bdev_name Base
expect_err "bad name" -32602 "name" bdev_delay_create -b "a/b" --base_bdev_name Base
expect_err "bdev_delete of the base while delayed over" -32002 "Base" bdev_delete -b Base
expect_err "bdev_delay_delete of a bdev that is not a delay bdev" -32000 "Base" \
	bdev_delay_delete -b Base
expect_err "bdev_delay_delete of an unknown bdev" -32000 "Nope" bdev_delay_delete -b Nope
expect_err "bdev_delay_update_latency over 10 s" -32602 "write_latency_us" \
	bdev_delay_update_latency -b Slow --write_latency_us 10000001
expect_err "bdev_delay_update_latency of a bdev that is not a delay bdev" -32000 "Base" \
	bdev_delay_update_latency -b Base --latency_us 1
expect_err "bdev_delay_list of a bdev that is not a delay bdev" -32000 "Base" \
	bdev_delay_list -b Base
expect_eq "no state change on any error" "$(state)" "$before"

# In use by a namespace, like any bdev.
expect_ok "subsystem" nvme_subsystem_create --nqn $NQN
expect_ok "namespace on the delay bdev" nvme_namespace_create --nqn $NQN -b Slow -n 1
expect_err "bdev_delay_delete while a namespace uses it" -32002 "Slow" bdev_delay_delete -b Slow
expect_ok "delay over a delay bdev" bdev_delay_create -b Slower --base_bdev_name Slow2 \
	--latency_us 5

# save_config: the delay bdevs come back after their bases, with their latencies.
before=$(state)
expect_ok "save_config" save_config
printf '%s\n' "$OUT" >"$T/config.json"
saved=$(printf '%s' "$OUT" | "$JSON_GET" -c)
check "the config has bdev_delay_create with read and write latencies" sh -c \
	'grep -q "\"bdev_delay_create\"" "$1" && grep -q "\"write_latency_us\": 10000000" "$1"' \
	- "$T/config.json"
check "SIGTERM" stop_daemon TERM
check "nvemud -c config.json starts" start_daemon -c "$T/config.json"
expect_eq "state identical after restart" "$(state)" "$before"
call save_config
expect_eq "save_config identical after restart" "$(jget -c)" "$saved"

# Teardown order: namespace, delay bdevs, then the bases are free again.
expect_ok "namespace destroyed" nvme_namespace_destroy --nqn $NQN -n 1
expect_ok "bdev_delay_delete Slow" bdev_delay_delete -b Slow
expect_err "Slow2 still carries Slower" -32002 "Slow2" bdev_delete -b Slow2
expect_ok "bdev_delete (generic) of Slower" bdev_delete -b Slower
expect_ok "bdev_delay_delete Slow2" bdev_delay_delete -b Slow2
call bdev_list -b Base
expect_eq "the base has no users left" "$(jget 0.users)" 0
expect_ok "the base can be deleted" bdev_delete -b Base
check "nvemud still answers" quiet rpc rpc_get_methods
