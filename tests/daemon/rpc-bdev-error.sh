#!/bin/sh
# SPDX-License-Identifier: MIT
# bdev_error_*: SPDK's names (EE_<base>, io_type/error_type/num), nvemu's
# extensions (LBA range, probability, status), errors that name the field and
# change nothing, dbg_bdev_type on nvme_namespace_create, save_config keeping
# error bdevs with their rules and delay bdevs with SPDK's p99 latencies.
. "$(dirname "$0")/lib.sh"

NQN=nqn.2024-01.io.nvemu:fault

check "nvemud starts" start_daemon
expect_ok "base RAM bdev" bdev_malloc_create -b Base --num_blocks 8192 --block_size 512
expect_ok "bdev_error_create names it EE_<base>" bdev_error_create --base_name Base
expect_eq "it returns EE_Base" "$OUT" '"EE_Base"'
call bdev_list -b EE_Base
expect_eq "listed as type error with its base's geometry" \
	"$(jget 0.type) $(jget 0.num_blocks)/$(jget 0.block_size)" "error 8192/512"
call bdev_error_list -b EE_Base
expect_eq "bdev_error_list: base, no rules, nothing held" \
	"$(jget 0.base_name) $(jget -l 0.rules) $(jget 0.pending)" "Base 0 0"

expect_ok "inject: SPDK's read failure, num 5" bdev_error_inject_error -b EE_Base \
	--io_type read --error_type failure --num 5
expect_ok "inject: a write fault on LBAs 100..109 with 50 % probability" \
	bdev_error_inject_error -b EE_Base --io_type write --error_type failure --num 4294967295 \
	--offset_blocks 100 --num_blocks 10 --probability 50 --seed 7 --status write_fault
expect_ok "inject: Access Denied by sct/sc with DNR on flushes" bdev_error_inject_error \
	-b EE_Base --io_type flush --error_type failure --sct 2 --sc 0x86 --dnr
expect_ok "inject: corrupt_data" bdev_error_inject_error -b EE_Base --io_type read \
	--error_type corrupt_data --corrupt_offset 3 --corrupt_value 255
call bdev_error_list -b EE_Base
expect_eq "four rules in order" "$(jget -l 0.rules)" 4
expect_eq "the first: read, failure, 5 left" \
	"$(jget 0.rules.0.io_type.0) $(jget 0.rules.0.error_type) $(jget 0.rules.0.num)" \
	"read failure 5"
expect_eq "the second: its range, probability and status" \
	"$(jget 0.rules.1.offset_blocks) $(jget 0.rules.1.num_blocks) $(jget 0.rules.1.probability) $(jget 0.rules.1.sct)/$(jget 0.rules.1.sc)" \
	"100 10 50 2/128"
expect_eq "the third: Access Denied with DNR" \
	"$(jget 0.rules.2.sct)/$(jget 0.rules.2.sc) $(jget 0.rules.2.dnr)" "2/134 true"

# Errors change nothing and name the field.
before=$(state)
rules=$(rpc bdev_error_list | "$JSON_GET" -c)
expect_err "unknown io_type" -32602 "io_type" bdev_error_inject_error -b EE_Base \
	--io_type trim --error_type failure
expect_err "unknown error_type" -32602 "error_type" bdev_error_inject_error -b EE_Base \
	--io_type read --error_type boom
expect_err "no error_type" -32602 "error_type" bdev_error_inject_error -b EE_Base --io_type read
expect_err "corrupt_data without corrupt_value" -32602 "corrupt_value" \
	bdev_error_inject_error -b EE_Base --io_type read --error_type corrupt_data
expect_err "corrupt_value 0" -32602 "corrupt_value" bdev_error_inject_error -b EE_Base \
	--io_type read --error_type corrupt_data --corrupt_value 0
expect_err "range past the end" -32602 "offset_blocks" bdev_error_inject_error -b EE_Base \
	--io_type read --error_type failure --offset_blocks 8190 --num_blocks 3
expect_err "probability 0" -32602 "probability" bdev_error_inject_error -b EE_Base \
	--io_type read --error_type failure --probability 0
expect_err "probability over 100" -32602 "probability" bdev_error_inject_error -b EE_Base \
	--io_type read --error_type failure --probability 101
expect_err "unknown status name" -32602 "status" bdev_error_inject_error -b EE_Base \
	--io_type read --error_type failure --status oops
expect_err "sct 0 sc 0 is success" -32602 "sc" bdev_error_inject_error -b EE_Base \
	--io_type read --error_type failure --sct 0 --sc 0
expect_err "sct over 7" -32602 "sct" bdev_error_inject_error -b EE_Base \
	--io_type read --error_type failure --sct 8 --sc 1
expect_err "status with pending" -32602 "status" bdev_error_inject_error -b EE_Base \
	--io_type read --error_type pending --status write_fault
expect_err "inject into a bdev that is not an error bdev" -32000 "name" \
	bdev_error_inject_error -b Base --io_type read --error_type failure
expect_err "bdev_error_create over an unknown base" -32000 "base_name" bdev_error_create \
	--base_name Nope
expect_err "bdev_error_create twice" -32001 "name" bdev_error_create --base_name Base
expect_err "bdev_error_delete of a bdev that is not an error bdev" -32000 "Base" \
	bdev_error_delete -b Base
expect_err "bdev_delete of the base under the error bdev" -32002 "Base" bdev_delete -b Base
expect_eq "no state change on any error" "$(state)" "$before"
expect_eq "no rule change on any error" "$(rpc bdev_error_list | "$JSON_GET" -c)" "$rules"

# Run-time changes: num 0 removes a type's rules, clear removes all.
expect_ok "num 0 on flush removes the flush rule" bdev_error_inject_error -b EE_Base \
	--io_type flush --error_type failure --num 0
call bdev_error_list -b EE_Base
expect_eq "three rules left" "$(jget -l 0.rules)" 3

# dbg_bdev_type: the namespace goes on a new error bdev.
expect_ok "subsystem" nvme_subsystem_create --nqn $NQN
expect_ok "second base" bdev_malloc_create -b Base2 --num_blocks 2048 --block_size 512
expect_err "dbg_bdev_type other than error" -32602 "dbg_bdev_type" nvme_namespace_create \
	--nqn $NQN -b Base2 -n 2 --dbg_bdev_type delay
expect_ok "nvme_namespace_create --dbg_bdev_type error" nvme_namespace_create --nqn $NQN \
	-b Base2 -n 2 --dbg_bdev_type error
call nvme_namespace_list --nqn $NQN
expect_eq "the namespace is on EE_Base2" "$(jget 0.bdev_name)" EE_Base2
expect_err "dbg_bdev_type on a bdev in use" -32001 "bdev_name" nvme_namespace_create \
	--nqn $NQN -b Base2 -n 3 --dbg_bdev_type error
expect_ok "a rule on it" bdev_error_inject_error -b EE_Base2 --io_type all \
	--error_type failure --num 2 --status unrecovered_read_error
expect_ok "namespace on EE_Base" nvme_namespace_create --nqn $NQN -b EE_Base -n 1
expect_err "bdev_error_create over a bdev a namespace uses" -32001 "base_name" \
	bdev_error_create --base_name EE_Base
expect_err "bdev_delay_create over a bdev a namespace uses" -32001 "base_bdev_name" \
	bdev_delay_create -b D9 --base_bdev_name EE_Base --latency_us 1

# Delay bdevs with SPDK's parameters.
expect_ok "bdev_delay_create with SPDK's avg/p99 latencies" bdev_delay_create -b Slow \
	--base_bdev_name Base --avg_read_latency 100 --p99_read_latency 5000 \
	--avg_write_latency 200 --p99_write_latency 6000
expect_ok "SPDK's bdev_delay_update_latency" bdev_delay_update_latency --delay_bdev_name Slow \
	--latency_type p99_write --latency_us 7000
call bdev_delay_list -b Slow
expect_eq "avg and p99 latencies" \
	"$(jget 0.read_latency_us) $(jget 0.p99_read_latency) $(jget 0.write_latency_us) $(jget 0.p99_write_latency)" \
	"100 5000 200 7000"
expect_err "unknown latency_type" -32602 "latency_type" bdev_delay_update_latency \
	--delay_bdev_name Slow --latency_type p50 --latency_us 1
expect_err "latency_type without latency_us" -32602 "latency_us" bdev_delay_update_latency \
	--delay_bdev_name Slow --latency_type avg_read
expect_err "p99 over 10 s" -32602 "p99_read_latency" bdev_delay_create -b S2 \
	--base_bdev_name Base2 --p99_read_latency 10000001
expect_err "update without a name" -32602 "delay_bdev_name" bdev_delay_update_latency \
	--latency_us 1

# SNAP's quirks on nvme_controller_create / modify.
expect_ok "nvme_controller_create --quirks 0x11" nvme_controller_create --nqn $NQN --quirks 0x11
QC=$(printf '%s' "$OUT" | tr -d '"')
call nvme_controller_list -c "$QC"
expect_eq "listed with quirks 17" "$(jget 0.quirks)" 17
expect_err "quirks bit 2 (reserved) at create" -32602 "quirks" nvme_controller_create \
	--nqn $NQN --quirks 4
expect_err "quirks bit 2 (reserved) at modify" -32602 "quirks" nvme_controller_modify \
	-c "$QC" --quirks 0x14
expect_ok "nvme_controller_modify --quirks 0x1b" nvme_controller_modify -c "$QC" --quirks 0x1b
call nvme_controller_list -c "$QC"
expect_eq "listed with quirks 27" "$(jget 0.quirks)" 27

# save_config keeps both kinds with their settings.
before=$(state)
rules=$(rpc bdev_error_list | "$JSON_GET" -c)
expect_ok "save_config" save_config
printf '%s\n' "$OUT" >"$T/config.json"
saved=$(printf '%s' "$OUT" | "$JSON_GET" -c)
check "the config creates the error bdevs and injects their rules" sh -c \
	'grep -q "\"bdev_error_create\"" "$1" && grep -q "\"bdev_error_inject_error\"" "$1" &&
	 grep -q "\"p99_write_latency\": 7000" "$1"' - "$T/config.json"
check "SIGTERM" stop_daemon TERM
check "nvemud -c config.json starts" start_daemon -c "$T/config.json"
expect_eq "state identical after restart" "$(state)" "$before"
call bdev_error_list
expect_eq "rules identical after restart" "$(jget -c)" "$rules"
call save_config
expect_eq "save_config identical after restart" "$(jget -c)" "$saved"

# Teardown: namespaces, then the error bdevs, then their bases.
expect_ok "clear EE_Base" bdev_error_inject_error -b EE_Base --io_type clear
call bdev_error_list -b EE_Base
expect_eq "no rules after clear" "$(jget -l 0.rules)" 0
expect_err "bdev_error_delete while a namespace uses it" -32002 "EE_Base" \
	bdev_error_delete -b EE_Base
expect_ok "namespace 1 destroyed" nvme_namespace_destroy --nqn $NQN -n 1
expect_ok "namespace 2 destroyed" nvme_namespace_destroy --nqn $NQN -n 2
expect_ok "bdev_delay_delete Slow" bdev_delay_delete -b Slow
expect_ok "bdev_error_delete EE_Base" bdev_error_delete -b EE_Base
expect_ok "bdev_error_delete EE_Base2" bdev_error_delete -b EE_Base2
expect_ok "Base deleted" bdev_delete -b Base
expect_ok "Base2 deleted" bdev_delete -b Base2
check "nvemud still answers" quiet rpc rpc_get_methods
