#!/bin/sh
# SPDX-License-Identifier: MIT
# nvmf_* methods (NVMe/TCP listeners and access lists): both parameter forms,
# validation naming the field, save_config and -c, the default listener and
# what happens when its port is taken. Real hosts: tests/guest/tcp-basic.sh.
. "$(dirname "$0")/lib.sh"

DEF=nqn.2014-08.io.nvemu:default
NQN=nqn.2024-01.io.nvemu:tcp
HOST1=nqn.2014-08.org.nvmexpress:uuid:11111111-2222-4333-8444-555555555555
HOST2=nqn.2014-08.org.nvmexpress:uuid:66666666-7777-4888-9999-aaaaaaaaaaaa

check "nvemud starts (default listener on a free port)" start_daemon
call nvmf_subsystem_get_listeners --nqn $DEF
expect_eq "default listener: 127.0.0.1" "$(jget 0.address.traddr)" 127.0.0.1
DPORT=$(jget 0.address.trsvcid)
check "default listener: a real port ($DPORT), not 0" [ "${DPORT:-0}" -gt 0 ]
expect_eq "default listener: trtype tcp, ipv4" "$(jget 0.address.trtype) $(jget 0.address.adrfam)" \
	"tcp ipv4"
call nvmf_get_subsystems --nqn $DEF
expect_eq "default subsystem allows any host" "$(jget 0.allow_any_host)" true
check "nvme_subsystem_list shows the listener's TCP port" sh -c \
	'"$1" -s "$2" nvme_subsystem_list --nqn "$3" | grep -q "\"trsvcid\": \"$4\""' \
	- "$NVEMU_RPC" "$SOCK" $DEF "$DPORT"

# A second daemon on the same address: a clear startup error naming it.
"$NVEMUD" -r "$T/sock2" -l "127.0.0.1:$DPORT" >"$T/d2.log" 2>&1 &
d2=$!
i=0
while kill -0 $d2 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
if kill -0 $d2 2>/dev/null; then
	kill $d2
	nok "nvemud -l on a taken port exits"
else
	wait $d2
	rc=$?
	check "nvemud -l on a taken port exits 1 (got $rc)" [ $rc -eq 1 ]
fi
check "... naming 127.0.0.1:$DPORT and the cause" \
	sh -c 'grep -q "127.0.0.1:$1.*in use" "$2"' - "$DPORT" "$T/d2.log"
"$NVEMUD" -r "$T/sock3" -l none >"$T/d3.log" 2>&1 &
d3=$!
i=0
while [ $i -lt 100 ] && ! "$NVEMU_RPC" -s "$T/sock3" rpc_get_methods >/dev/null 2>&1; do
	sleep 0.05
	i=$((i + 1))
done
expect_eq "nvemud -l none: no listener" \
	"$("$NVEMU_RPC" -s "$T/sock3" nvmf_subsystem_get_listeners --nqn $DEF | "$JSON_GET" -l .)" 0
kill $d3
wait $d3
"$NVEMUD" -r "$T/sock4" -l 127.0.0.1 >"$T/d4.log" 2>&1
expect_eq "nvemud -l without a port: usage error" $? 2

# --- listeners
expect_ok "nvme_subsystem_create" nvme_subsystem_create --nqn $NQN --serial_number TCP1
expect_ok "add_listener, flat parameters, port 0" nvmf_subsystem_add_listener --nqn $NQN \
	--trtype tcp --traddr 127.0.0.1 --trsvcid 0 --adrfam ipv4
P1=$(jget trsvcid)
check "... returns the bound port ($P1)" [ "${P1:-0}" -gt 0 ]
expect_ok "a second subsystem shares the default listener's address" \
	nvmf_subsystem_add_listener --nqn $NQN --traddr 127.0.0.1 --trsvcid "$DPORT"
expect_ok "add_listener, SPDK's listen_address object (TCP, IPv4)" nvmf_subsystem_add_listener \
	-j "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"adrfam\":\"IPv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"0\"}}"
P2=$(jget trsvcid)
call nvmf_subsystem_get_listeners --nqn $NQN
expect_eq "get_listeners: three" "$(jget -l .)" 3
expect_eq "get_listeners: ports in order" \
	"$(jget 0.address.trsvcid) $(jget 1.address.trsvcid) $(jget 2.address.trsvcid)" "$P1 $DPORT $P2"
expect_err "a listener twice" -32001 "exists" nvmf_subsystem_add_listener --nqn $NQN \
	--traddr 127.0.0.1 --trsvcid "$P1"
expect_err "trtype rdma" -32602 "trtype" nvmf_subsystem_add_listener --nqn $NQN --trtype rdma \
	--traddr 127.0.0.1 --trsvcid 0
expect_err "traddr not numeric" -32602 "traddr" nvmf_subsystem_add_listener --nqn $NQN \
	--traddr localhost --trsvcid 0
expect_err "traddr IPv6 with adrfam ipv4" -32602 "traddr" nvmf_subsystem_add_listener --nqn $NQN \
	--traddr ::1 --trsvcid 0 --adrfam ipv4
expect_err "trsvcid 65536" -32602 "trsvcid" nvmf_subsystem_add_listener --nqn $NQN \
	--traddr 127.0.0.1 --trsvcid 65536
expect_err "trsvcid not a number" -32602 "trsvcid" nvmf_subsystem_add_listener --nqn $NQN \
	--traddr 127.0.0.1 --trsvcid 44x
expect_err "adrfam ib" -32602 "adrfam" nvmf_subsystem_add_listener --nqn $NQN \
	--traddr 127.0.0.1 --trsvcid 0 --adrfam ib
expect_err "no traddr" -32602 "traddr" nvmf_subsystem_add_listener --nqn $NQN --trsvcid 0
expect_err "no trsvcid" -32602 "trsvcid" nvmf_subsystem_add_listener --nqn $NQN --traddr 127.0.0.1
expect_err "listen_address without traddr" -32602 "listen_address.traddr" \
	nvmf_subsystem_add_listener -j "{\"nqn\":\"$NQN\",\"listen_address\":{\"trsvcid\":\"0\"}}"
expect_err "listen_address with an unknown key" -32602 "listen_address.port" \
	nvmf_subsystem_add_listener -j "{\"nqn\":\"$NQN\",\"listen_address\":{\"traddr\":\"127.0.0.1\",\"trsvcid\":\"0\",\"port\":1}}"
expect_err "listen_address mistyped trsvcid" -32602 "listen_address.trsvcid" \
	nvmf_subsystem_add_listener -j "{\"nqn\":\"$NQN\",\"listen_address\":{\"traddr\":\"127.0.0.1\",\"trsvcid\":4420}}"
expect_err "listen_address and flat fields together" -32602 "listen_address" \
	nvmf_subsystem_add_listener -j "{\"nqn\":\"$NQN\",\"traddr\":\"127.0.0.1\",\"listen_address\":{\"traddr\":\"127.0.0.1\",\"trsvcid\":\"0\"}}"
expect_err "unknown subsystem" -32000 "nqn" nvmf_subsystem_add_listener --nqn nqn.none:x \
	--traddr 127.0.0.1 --trsvcid 0
PORTID=$(rpc nvmf_subsystem_get_listeners --nqn $NQN | "$JSON_GET" 0.port_id)
expect_err "nvme_subsystem_remove_port refuses a listener's port" -32002 "listener" \
	nvme_subsystem_remove_port --nqn $NQN --port "$PORTID"
expect_ok "remove_listener (SPDK form)" nvmf_subsystem_remove_listener \
	-j "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$P2\"}}"
expect_err "remove_listener twice" -32000 "127.0.0.1:$P2" nvmf_subsystem_remove_listener \
	--nqn $NQN --traddr 127.0.0.1 --trsvcid "$P2"
call nvmf_subsystem_get_listeners --nqn $NQN
expect_eq "two listeners left" "$(jget -l .)" 2
call nvme_subsystem_list --nqn $NQN
expect_eq "... and two TCP ports" "$(jget -l 0.ports)" 2

# --- hosts
call nvmf_get_subsystems --nqn $NQN
expect_eq "a new subsystem allows any host" "$(jget 0.allow_any_host)" true
expect_ok "allow_any_host false" nvmf_subsystem_allow_any_host --nqn $NQN --allow_any_host false
expect_ok "add_host" nvmf_subsystem_add_host --nqn $NQN --host $HOST1
expect_ok "add_host (second)" nvmf_subsystem_add_host --nqn $NQN --host $HOST2
expect_err "add_host twice" -32001 "already" nvmf_subsystem_add_host --nqn $NQN --host $HOST1
expect_err "add_host: not an NQN" -32602 "host" nvmf_subsystem_add_host --nqn $NQN --host foo
expect_ok "remove_host" nvmf_subsystem_remove_host --nqn $NQN --host $HOST2
expect_err "remove_host not on the list" -32000 "host" nvmf_subsystem_remove_host --nqn $NQN \
	--host $HOST2
expect_err "allow_any_host: not a bool" -32602 "allow_any_host" nvmf_subsystem_allow_any_host \
	-j "{\"nqn\":\"$NQN\",\"allow_any_host\":\"yes\"}"
call nvmf_get_subsystems --nqn $NQN
expect_eq "get_subsystems: allow_any_host false, one host" \
	"$(jget 0.allow_any_host) $(jget -l 0.hosts) $(jget 0.hosts.0.nqn)" "false 1 $HOST1"
expect_eq "get_subsystems: no controllers" "$(jget -l 0.controllers)" 0
call nvmf_subsystem_get_controllers --nqn $NQN
expect_eq "get_controllers: none" "$(jget -l .)" 0

# --- save_config and -c
expect_ok "save_config" save_config -f "$T/cfg.json"
check "saved: listener, hosts, allow_any_host" sh -c \
	'grep -q nvmf_subsystem_add_listener "$1" && grep -q "$2" "$1" && grep -q "\"allow_any_host\": false" "$1"' \
	- "$T/cfg.json" "$HOST1"
check "saved: listener ports are not saved as nvme_subsystem_add_port" \
	not grep -q '"type": "tcp"' "$T/cfg.json"
before=$(state; rpc nvmf_get_subsystems | "$JSON_GET" -c)
stop_daemon
expect_eq "SIGTERM: exit 0" "$DRC" 0
check "nvemud -c restores it" start_daemon -c "$T/cfg.json"
after=$(state; rpc nvmf_get_subsystems | "$JSON_GET" -c)
expect_eq "same subsystems, listeners (ports), hosts after the restart" "$after" "$before"

# --- destroying a subsystem frees its listeners
expect_ok "nvme_subsystem_destroy" nvme_subsystem_destroy --nqn $NQN
expect_ok "its port can be listened on again" nvmf_subsystem_add_listener --nqn $DEF \
	--traddr 127.0.0.1 --trsvcid "$P1"
expect_ok "remove_listener on the default subsystem" nvmf_subsystem_remove_listener --nqn $DEF \
	--traddr 127.0.0.1 --trsvcid "$P1"
check "daemon alive" daemon_alive
stop_daemon
expect_eq "SIGTERM: exit 0" "$DRC" 0
