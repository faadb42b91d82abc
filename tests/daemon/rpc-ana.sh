#!/bin/sh
# SPDX-License-Identifier: MIT
# ANA and namespace masking over RPC: ana_reporting on nvme_subsystem_create,
# anagrpid / no_auto_visible on nvme_namespace_create,
# nvmf_subsystem_listener_set_ana_state (both address forms, every state,
# validation naming the field), ana_states in nvmf_subsystem_get_listeners,
# nvmf_ns_add_host / nvmf_ns_remove_host, and save_config / -c keeping all
# of it. Real hosts: tests/guest/guest-ana.sh.
. "$(dirname "$0")/lib.sh"

NQN=nqn.2024-01.io.nvemu:ana
OFF=nqn.2024-01.io.nvemu:noana
HOST1=nqn.2014-08.org.nvmexpress:uuid:11111111-2222-4333-8444-555555555555
HOST2=nqn.2014-08.org.nvmexpress:uuid:66666666-7777-4888-9999-aaaaaaaaaaaa

check "nvemud starts" start_daemon
expect_ok "nvme_subsystem_create --ana_reporting" nvme_subsystem_create --nqn $NQN \
	--ana_reporting true
expect_ok "a subsystem without ANA" nvme_subsystem_create --nqn $OFF
call nvme_subsystem_list --nqn $NQN
expect_eq "nvme_subsystem_list: ana_reporting true" "$(jget 0.ana_reporting)" true
call nvmf_get_subsystems --nqn $NQN
expect_eq "nvmf_get_subsystems: ana_reporting true (as SPDK)" "$(jget 0.ana_reporting)" true
call nvme_subsystem_list --nqn $OFF
expect_eq "... false by default (as SPDK)" "$(jget 0.ana_reporting)" false
expect_err "ana_reporting: not a bool" -32602 "ana_reporting" nvme_subsystem_create \
	-j "{\"nqn\":\"nqn.2024-01.io.nvemu:x\",\"ana_reporting\":\"yes\"}"

for b in 0 1 2; do
	expect_ok "bdev Malloc$b" bdev_malloc_create -b AnaM$b --num_blocks 2048 --block_size 512
done
expect_ok "namespace 1 (group: its NSID)" nvme_namespace_create --nqn $NQN -b AnaM0 -n 1
expect_ok "namespace 2 in ANA group 1" nvme_namespace_create --nqn $NQN -b AnaM1 -n 2 \
	--anagrpid 1
expect_ok "namespace 3, no_auto_visible" nvme_namespace_create --nqn $NQN -b AnaM2 -n 3 \
	--no_auto_visible true
expect_err "anagrpid 33" -32602 "anagrpid" nvme_namespace_create --nqn $OFF -b AnaM2 -n 4 \
	--anagrpid 33
expect_err "anagrpid 0" -32602 "anagrpid" nvme_namespace_create --nqn $OFF -b AnaM2 -n 4 \
	--anagrpid 0
call nvme_namespace_list --nqn $NQN
expect_eq "nvme_namespace_list: anagrpid 1 1 3" \
	"$(jget 0.anagrpid) $(jget 1.anagrpid) $(jget 2.anagrpid)" "1 1 3"
call nvmf_get_subsystems --nqn $NQN
expect_eq "nvmf_get_subsystems: namespaces' anagrpid" \
	"$(jget 0.namespaces.0.anagrpid) $(jget 0.namespaces.2.anagrpid)" "1 3"
call nvme_namespace_list --nqn $NQN
expect_eq "... no_auto_visible false false true" \
	"$(jget 0.no_auto_visible) $(jget 1.no_auto_visible) $(jget 2.no_auto_visible)" \
	"false false true"

# --- listeners and their ANA states
expect_ok "listener A" nvmf_subsystem_add_listener --nqn $NQN --traddr 127.0.0.1 --trsvcid 0
PA=$(jget trsvcid)
expect_ok "listener B" nvmf_subsystem_add_listener --nqn $NQN --traddr 127.0.0.1 --trsvcid 0
PB=$(jget trsvcid)
call nvmf_subsystem_get_listeners --nqn $NQN
expect_eq "get_listeners: ana_states of groups 1 and 3, optimized" \
	"$(jget -l 0.ana_states) $(jget 0.ana_states.0.ana_group) $(jget 0.ana_states.0.ana_state) $(jget 0.ana_states.1.ana_group) $(jget 0.ana_states.1.ana_state)" \
	"2 1 optimized 3 optimized"

expect_ok "set_ana_state: B group 1 inaccessible (listen_address object)" \
	nvmf_subsystem_listener_set_ana_state -j "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"tcp\",\"adrfam\":\"ipv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$PB\"},\"ana_state\":\"inaccessible\",\"anagrpid\":1}"
call nvmf_subsystem_get_listeners --nqn $NQN
expect_eq "B: group 1 inaccessible, group 3 still optimized" \
	"$(jget 1.ana_states.0.ana_state) $(jget 1.ana_states.1.ana_state)" "inaccessible optimized"
expect_eq "A: untouched" "$(jget 0.ana_states.0.ana_state)" optimized
for st in optimized non_optimized inaccessible persistent_loss change; do
	expect_ok "set_ana_state A group 3 $st (flat, CLI -n/-g)" \
		nvmf_subsystem_listener_set_ana_state --nqn $NQN --traddr 127.0.0.1 --trsvcid "$PA" \
		-n $st -g 3
	call nvmf_subsystem_get_listeners --nqn $NQN
	expect_eq "... reads back $st" "$(jget 0.ana_states.1.ana_state)" $st
done
# --- change is transient: it moves on by itself well within ANATT
setA="nvmf_subsystem_listener_set_ana_state --nqn $NQN --traddr 127.0.0.1 --trsvcid $PA -g 3"
stateA3() {
	call nvmf_subsystem_get_listeners --nqn $NQN
	jget 0.ana_states.1.ana_state
}
expect_ok "group 3 non_optimized" $setA -n non_optimized
expect_ok "change, default next state and time" $setA -n change
expect_eq "... change at once" "$(stateA3)" change
sleep 1.5
expect_eq "... back to non_optimized after 1 s (the state before)" "$(stateA3)" non_optimized
expect_ok "change to inaccessible in 200 ms" $setA -n change --next_state inaccessible \
	--change_ms 200
sleep 0.6
expect_eq "... inaccessible" "$(stateA3)" inaccessible
expect_ok "change_ms 0: stays in change" $setA -n change --change_ms 0
sleep 0.5
expect_eq "... still change" "$(stateA3)" change
expect_ok "change for 300 ms" $setA -n change --next_state persistent_loss --change_ms 300
expect_ok "... set by hand before it ends" $setA -n optimized
sleep 0.6
expect_eq "... the state set by hand stands" "$(stateA3)" optimized
expect_err "next_state without change" -32602 "next_state" $setA -n optimized \
	--next_state inaccessible
expect_err "next_state change" -32602 "next_state" $setA -n change --next_state change
expect_err "change_ms without change" -32602 "change_ms" $setA -n optimized --change_ms 5
expect_err "change_ms beyond ANATT" -32602 "change_ms" $setA -n change --change_ms 9001

expect_ok "no anagrpid: every group of A" nvmf_subsystem_listener_set_ana_state --nqn $NQN \
	--traddr 127.0.0.1 --trsvcid "$PA" --ana_state non_optimized
call nvmf_subsystem_get_listeners --nqn $NQN
expect_eq "A: groups 1 and 3 non_optimized" \
	"$(jget 0.ana_states.0.ana_state) $(jget 0.ana_states.1.ana_state)" \
	"non_optimized non_optimized"
expect_eq "... and the other groups are listed now that they are not optimized" \
	"$(jget -l 0.ana_states)" 32

expect_err "ana_state bogus" -32602 "ana_state" nvmf_subsystem_listener_set_ana_state \
	--nqn $NQN --traddr 127.0.0.1 --trsvcid "$PA" --ana_state bogus
expect_err "ana_state missing" -32602 "ana_state" nvmf_subsystem_listener_set_ana_state \
	--nqn $NQN --traddr 127.0.0.1 --trsvcid "$PA"
expect_err "anagrpid 33" -32602 "anagrpid" nvmf_subsystem_listener_set_ana_state \
	--nqn $NQN --traddr 127.0.0.1 --trsvcid "$PA" --ana_state optimized --anagrpid 33
expect_err "no such listener" -32000 "listen_address" nvmf_subsystem_listener_set_ana_state \
	--nqn $NQN --traddr 127.0.0.1 --trsvcid 1 --ana_state optimized
expect_err "bad traddr" -32602 "traddr" nvmf_subsystem_listener_set_ana_state \
	--nqn $NQN --traddr nowhere --trsvcid "$PA" --ana_state optimized
expect_err "no such subsystem" -32000 "nqn" nvmf_subsystem_listener_set_ana_state \
	--nqn nqn.2024-01.io.nvemu:none --traddr 127.0.0.1 --trsvcid "$PA" --ana_state optimized
expect_ok "listener on the subsystem without ANA" nvmf_subsystem_add_listener --nqn $OFF \
	--traddr 127.0.0.1 --trsvcid 0
PO=$(jget trsvcid)
expect_err "set_ana_state without ana_reporting: wrong state" -32003 "ana_reporting" \
	nvmf_subsystem_listener_set_ana_state --nqn $OFF --traddr 127.0.0.1 --trsvcid "$PO" \
	--ana_state inaccessible
call nvmf_subsystem_get_listeners --nqn $OFF
check "no ana_states without ana_reporting" not jget 0.ana_states

# --- masking
expect_ok "nvmf_ns_add_host" nvmf_ns_add_host --nqn $NQN -n 3 --host $HOST1
expect_ok "a second host" nvmf_ns_add_host --nqn $NQN -n 3 --host $HOST2
call nvme_namespace_list --nqn $NQN
expect_eq "namespace 3 lists both hosts" "$(jget 2.hosts.0) $(jget 2.hosts.1)" "$HOST1 $HOST2"
expect_err "the same host twice" -32001 "already" nvmf_ns_add_host --nqn $NQN -n 3 --host $HOST1
expect_err "an auto-visible namespace: wrong state" -32003 "no_auto_visible" nvmf_ns_add_host \
	--nqn $NQN -n 1 --host $HOST1
expect_err "host not an NQN" -32602 "host" nvmf_ns_add_host --nqn $NQN -n 3 --host bogus
expect_err "no namespace 9" -32000 "nsid" nvmf_ns_add_host --nqn $NQN -n 9 --host $HOST1
expect_ok "nvmf_ns_remove_host" nvmf_ns_remove_host --nqn $NQN -n 3 --host $HOST2
expect_err "removing it again" -32000 "not on" nvmf_ns_remove_host --nqn $NQN -n 3 --host $HOST2
call nvme_namespace_list --nqn $NQN
expect_eq "namespace 3: HOST1 left" "$(jget -l 2.hosts) $(jget 2.hosts.0)" "1 $HOST1"

# --- save_config and -c
expect_ok "save_config" save_config -f "$T/cfg.json"
check "saved: ana_reporting, set_ana_state, anagrpid, no_auto_visible, nvmf_ns_add_host" sh -c \
	'grep -q "\"ana_reporting\": true" "$1" && grep -q nvmf_subsystem_listener_set_ana_state "$1" &&
	 grep -q "\"no_auto_visible\": true" "$1" && grep -q nvmf_ns_add_host "$1"' - "$T/cfg.json"
before=$(state; rpc nvmf_get_subsystems | "$JSON_GET" -c;
	rpc nvmf_subsystem_get_listeners --nqn $NQN | "$JSON_GET" -c)
stop_daemon
expect_eq "SIGTERM: exit 0" "$DRC" 0
check "nvemud -c restores it" start_daemon -c "$T/cfg.json"
after=$(state; rpc nvmf_get_subsystems | "$JSON_GET" -c;
	rpc nvmf_subsystem_get_listeners --nqn $NQN | "$JSON_GET" -c)
expect_eq "same ANA states, groups, masks after the restart" "$after" "$before"

check "nvemu-rpc --help lists the new methods" sh -c \
	'"$1" nvmf_subsystem_listener_set_ana_state --help | grep -q ana_state &&
	 "$1" nvmf_ns_add_host --help | grep -q host' - "$NVEMU_RPC"
check "daemon alive" daemon_alive
stop_daemon
expect_eq "SIGTERM: exit 0" "$DRC" 0
