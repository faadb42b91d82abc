#!/bin/sh
# SPDX-License-Identifier: MIT
# NVMe-MI served by nvemud: the default configuration's endpoint
# (network 1, EID 9, on the default subsystem's two-wire port), reached by
# unmodified nvme-cli and Debian's libnvme-mi through libnvemu-mctp-preload.so
# on a private MCTP socket. One model: what RPC changes, MI sees, and what MI
# changes, RPC sees. Endpoints are created, listed and destroyed over RPC.
. "$(dirname "$0")/../daemon/lib.sh"

for v in MCTP_PRELOAD MI_HEALTH; do
	eval "p=\${$v:-}"
	if [ -z "$p" ] || [ ! -e "$p" ]; then
		nok "$v not set (a missing tool fails, never skips)"
		exit 1
	fi
done
if ! command -v nvme >/dev/null 2>&1; then
	nok "nvme-cli not installed (a missing tool fails, never skips)"
	exit 1
fi

MSOCK=$T/mctp.sock
NQN=nqn.2014-08.io.nvemu:default
DEV=mctp:1,9
export LIBNVME_MI_PROBE_ENABLED=0

# In a sanitizer build the preload library needs the ASan runtime first.
PRELOAD=$MCTP_PRELOAD
asan=$(ldd "$MCTP_PRELOAD" 2>/dev/null | sed -n 's/.*\(libasan[^ ]*\) => \([^ ]*\).*/\2/p')
if [ -n "$asan" ]; then
	PRELOAD="$asan:$MCTP_PRELOAD"
	export ASAN_OPTIONS=detect_leaks=0
fi

pre() {
	LD_PRELOAD="$PRELOAD" NVEMU_MCTP_SOCKET="$MSOCK" "$@"
}

# json_field FILE KEY: the value of "KEY":VALUE in nvme-cli's JSON.
json_field() {
	sed -n "s/^ *\"$2\" *: *\"\{0,1\}\([^\",]*\).*/\1/p" "$1" | head -n 1 | sed 's/ *$//'
}

nsze_of() {
	pre nvme id-ns "${2:-$DEV}" -n "$1" -o json >"$T/idns" 2>"$T/err" || return 1
	json_field "$T/idns" nsze
}

# kv FILE KEY: KEY=VALUE lines of mi-health.
kv() {
	sed -n "s/^$2=//p" "$1"
}

check "nvemud starts with a private MCTP socket" start_daemon
check "the MCTP socket exists" [ -S "$MSOCK" ]

call nvme_mi_endpoint_list
expect_eq "default configuration: one endpoint" "$(jget -l .)" 1
expect_eq "  on the default subsystem" "$(jget 0.nqn)" "$NQN"
expect_eq "  network 1" "$(jget 0.net)" 1
expect_eq "  EID 9" "$(jget 0.eid)" 9
expect_eq "  MTU 64" "$(jget 0.mtu)" 64
TWPORT=$(jget 0.port)
call nvme_subsystem_list --nqn "$NQN"
SN=$(jget 0.serial_number)
i=$(jget -f id="$TWPORT" 0.ports)
expect_eq "  on the two-wire port" "$(jget "0.ports.$i.type")" two_wire

# --- nvme-cli reads the model
if pre nvme id-ctrl $DEV -o json >"$T/idc" 2>"$T/err"; then
	expect_eq "nvme id-ctrl $DEV: the default subsystem's serial" \
		"$(json_field "$T/idc" sn)" "$SN"
	expect_eq "nvme id-ctrl: controller 1" "$(json_field "$T/idc" cntlid)" 1
else
	nok "nvme id-ctrl $DEV"
	diag "$(cat "$T/err")"
fi
call nvme_mi_endpoint_list
check "the endpoint counted the messages" [ "$(jget 0.stats.rx_messages)" -ge 1 ]

expect_ok "nvme_subsystem_set_health: 350 K, critical warning 0x2, 7% used" \
	nvme_subsystem_set_health --nqn "$NQN" --temperature 350 --critical_warning 2 \
	--percentage_used 7
if pre nvme smart-log $DEV -o json >"$T/smart" 2>"$T/err"; then
	expect_eq "nvme smart-log: temperature set over RPC" "$(json_field "$T/smart" temperature)" 350
	expect_eq "nvme smart-log: critical warning set over RPC" \
		"$(json_field "$T/smart" critical_warning)" 2
	expect_eq "nvme smart-log: percentage used set over RPC" \
		"$(json_field "$T/smart" percent_used)" 7
else
	nok "nvme smart-log $DEV"
	diag "$(cat "$T/err")"
fi

# --- libnvme-mi: NVM Subsystem Health Status Poll and the SMART log (Admin tunnel)
if pre "$MI_HEALTH" 1 9 1 clear >"$T/h1" 2>"$T/err"; then
	expect_eq "health poll: composite temperature 77 C" "$(kv "$T/h1" ctemp)" 77
	expect_eq "health poll: percentage used 7" "$(kv "$T/h1" pdlu)" 7
	# SW holds the warnings inverted: bit 1 (temperature) clear, the rest set.
	expect_eq "health poll: critical warning 0x2 (SW 0x3d)" "$(kv "$T/h1" sw)" 0x3d
	expect_eq "SMART log (Get Log Page 02h, same handler as in-band): 350 K" \
		"$(kv "$T/h1" smart_temperature)" 350
	expect_eq "SMART log: critical warning 0x02" "$(kv "$T/h1" smart_critical_warning)" 0x02
else
	nok "mi-health"
	diag "$(cat "$T/err")"
fi
expect_ok "critical warning 0x8 (read only), 330 K" \
	nvme_subsystem_set_health --nqn "$NQN" --temperature 330 --critical_warning 8
if pre "$MI_HEALTH" 1 9 1 >"$T/h2" 2>"$T/err"; then
	expect_eq "health poll follows: 57 C" "$(kv "$T/h2" ctemp)" 57
	expect_eq "health poll follows: SW 0x37" "$(kv "$T/h2" sw)" 0x37
	ccs=$(kv "$T/h2" ccs)
	check "health poll: CTEMP and CCWARN changed flags set (ccs $ccs)" \
		[ $((ccs & 0x1200)) -eq $((0x1200)) ]
	expect_eq "SMART log follows: critical warning 0x08" \
		"$(kv "$T/h2" smart_critical_warning)" 0x08
else
	nok "mi-health after a change"
	diag "$(cat "$T/err")"
fi
rpc nvme_subsystem_set_health --nqn "$NQN" --temperature 300 --critical_warning 0 >/dev/null

# --- RPC -> MI: a namespace attached over RPC shows in MI's Identify Namespace
expect_eq "id-ns 2 before the RPC attach: zeroes" "$(nsze_of 2)" 0
expect_ok "nvme_controller_attach_ns NVMeCtrl1 2" nvme_controller_attach_ns -c NVMeCtrl1 -n 2
expect_eq "id-ns 2 over MI after the RPC attach: 2048 blocks" "$(nsze_of 2)" 2048

# --- MI -> RPC: a namespace created and attached over MI shows in the RPC lists
if pre nvme create-ns $DEV --nsze=4096 --ncap=4096 --flbas=0 >"$T/cr" 2>&1 &&
	grep -q "created nsid:3" "$T/cr"; then
	ok "nvme create-ns over MI: nsid 3"
else
	nok "nvme create-ns over MI"
	diag "$(cat "$T/cr")"
fi
call nvme_namespace_list --nqn "$NQN"
check "nvme_namespace_list shows nsid 3" jhas nsid=3
check "nvme attach-ns over MI" pre nvme attach-ns $DEV -n 3 -c 1
call nvme_controller_list --ctrl NVMeCtrl1
printf '%s' "$OUT" >"$T/cl"
check "nvme_controller_list: NVMeCtrl1 has namespace 3" \
	sh -c '"$1" 0.namespaces <"$2" | tr -d " \n" | grep -q "3"' - "$JSON_GET" "$T/cl"
expect_eq "id-ns 3 over MI: 4096 blocks" "$(nsze_of 3)" 4096
check "nvme detach-ns / delete-ns over MI" \
	sh -c 'LD_PRELOAD="$1" NVEMU_MCTP_SOCKET="$2" nvme detach-ns mctp:1,9 -n 3 -c 1 &&
	       LD_PRELOAD="$1" NVEMU_MCTP_SOCKET="$2" nvme delete-ns mctp:1,9 -n 3' - \
	"$PRELOAD" "$MSOCK"
call nvme_namespace_list --nqn "$NQN"
check "nvme_namespace_list: nsid 3 gone" not jhas nsid=3

# --- endpoints over RPC
NQN2=nqn.2024-01.io.nvemu:mi2
rpc nvme_subsystem_create --nqn $NQN2 --serial_number MI2SERIAL --state_file "$T/mi2.state" >/dev/null
rpc bdev_malloc_create -b M2 --num_blocks 512 >/dev/null
rpc nvme_namespace_create --nqn $NQN2 -b M2 -n 1 >/dev/null
rpc nvme_controller_create --nqn $NQN2 >/dev/null
expect_err "no two-wire port yet" -32000 "two-wire" nvme_mi_endpoint_create --nqn $NQN2
call nvme_subsystem_add_port --nqn $NQN2 --type two_wire
P2=$OUT
expect_err "EID 9 on network 1 is taken" -32001 "EID 9" nvme_mi_endpoint_create --nqn $NQN2 \
	--eid 9
expect_err "EID 7 is out of range" -32602 "eid" nvme_mi_endpoint_create --nqn $NQN2 --eid 7
expect_err "EID 255 is out of range" -32602 "eid" nvme_mi_endpoint_create --nqn $NQN2 --eid 255
expect_err "MTU 63 is out of range" -32602 "mtu" nvme_mi_endpoint_create --nqn $NQN2 --eid 20 \
	--mtu 63
expect_err "unknown port" -32000 "port" nvme_mi_endpoint_create --nqn $NQN2 --eid 20 --port 99
expect_err "unknown subsystem" -32000 "nqn" nvme_mi_endpoint_create --nqn nqn.none:x --eid 20
expect_ok "nvme_mi_endpoint_create on network 1 EID 20, MTU 128, no controller-0 alias" \
	nvme_mi_endpoint_create --nqn $NQN2 --eid 20 --mtu 128 --ctrl_id0_alias false
expect_eq "  returns net and eid" "$(jget eid)" 20
expect_err "one endpoint per port" -32001 "already" nvme_mi_endpoint_create --nqn $NQN2 --eid 21
call nvme_mi_endpoint_list --nqn $NQN2
expect_eq "listed with its port, MTU and alias" \
	"$(jget 0.port) $(jget 0.mtu) $(jget 0.ctrl_id0_alias)" "$P2 128 false"
if pre nvme id-ctrl mctp:1,20 -o json >"$T/idc0" 2>"$T/err"; then
	nok "nvme id-ctrl mctp:1,20 (controller 0) answered without the alias"
else
	ok "nvme id-ctrl mctp:1,20: controller 0 does not exist without the alias"
fi
if pre nvme id-ctrl mctp:1,20:1 -o json >"$T/idc2" 2>"$T/err"; then
	expect_eq "nvme id-ctrl mctp:1,20:1: the new subsystem's serial" \
		"$(json_field "$T/idc2" sn)" MI2SERIAL
else
	nok "nvme id-ctrl mctp:1,20:1"
	diag "$(cat "$T/err")"
fi
expect_eq "mctp:1,20:1 id-ns 1 is the new subsystem's (not attached: zeroes)" \
	"$(nsze_of 1 mctp:1,20:1)" 0
expect_eq "mctp:1,9 still the default subsystem's" "$(nsze_of 1)" 1024
expect_err "remove_port refused while an endpoint sits on it" -32002 "nvme_mi_endpoint_destroy" \
	nvme_subsystem_remove_port --nqn $NQN2 --port "$P2"

# The second subsystem keeps its sanitize state in a state_file: it outlives the restart below.
check "nvme sanitize mctp:1,20:1: block erase" pre nvme sanitize mctp:1,20:1 -a 2
check "  recorded in the state file" grep -q '^sanitize 0 0 1 2 ' "$T/mi2.state"

call save_config
printf '%s' "$OUT" >"$T/cfg.json"
check "save_config keeps the state_file" grep -q "\"state_file\": *\"$T/mi2.state\"" "$T/cfg.json"
check "save_config keeps both endpoints" \
	sh -c '[ "$(grep -c "\"nvme_mi_endpoint_create\"" "$1")" -eq 2 ]' - "$T/cfg.json"
check "save_config keeps ctrl_id0_alias false" grep -q '"ctrl_id0_alias": *false' "$T/cfg.json"

expect_err "destroy: unknown EID" -32000 "EID 77" nvme_mi_endpoint_destroy --eid 77
expect_err "destroy: eid and nqn together" -32602 "either" nvme_mi_endpoint_destroy --eid 20 \
	--nqn $NQN2
expect_err "destroy: nothing named" -32602 "nqn" nvme_mi_endpoint_destroy
expect_ok "nvme_mi_endpoint_destroy --eid 20" nvme_mi_endpoint_destroy --eid 20
call nvme_mi_endpoint_list
expect_eq "one endpoint left" "$(jget -l .)" 1
# An EID nobody owns: the request times out as on a real bus (libnvme-mi: 5 s).
if pre nvme id-ctrl mctp:1,20 >"$T/gone" 2>&1; then
	nok "mctp:1,20 no longer answers"
else
	ok "mctp:1,20 no longer answers"
fi
expect_ok "re-create by nqn with the default EID on network 2" nvme_mi_endpoint_create \
	--nqn $NQN2 --net 2
if pre nvme id-ctrl mctp:2,9 -o json >"$T/idc3" 2>"$T/err"; then
	expect_eq "nvme id-ctrl mctp:2,9: network 2 is a different bus" \
		"$(json_field "$T/idc3" sn)" MI2SERIAL
else
	nok "nvme id-ctrl mctp:2,9"
fi
expect_ok "destroy by nqn" nvme_mi_endpoint_destroy --nqn $NQN2
expect_ok "re-create, then destroy the subsystem with force" nvme_mi_endpoint_create --nqn $NQN2 \
	--eid 30
expect_ok "nvme_subsystem_destroy --force takes its endpoint" nvme_subsystem_destroy --nqn $NQN2 \
	--force
call nvme_mi_endpoint_list
expect_eq "only the default endpoint left" "$(jget -l .) $(jget 0.eid)" "1 9"

# --- PCIe Command Set: the vfio-user function's configuration space, out of band
if pre "$MI_PCIE_CFG" 1 9 >"$T/pcie" 2>&1; then
	ok "PCIe Configuration Read/Write over MI: $(grep -c '^ok' "$T/pcie") checks"
else
	nok "PCIe Configuration Read/Write over MI"
	diag "$(grep -v '^ok' "$T/pcie")"
fi

# --- Sanitize through the MI Admin tunnel (nvme-cli), with its Sanitize Status log
check "nvme sanitize over MI: overwrite, 3 passes, inverted" \
	pre nvme sanitize $DEV -a 3 -n 3 -i -p 0x5a5a5a5a
if pre nvme sanitize-log $DEV -o json >"$T/san" 2>"$T/err"; then
	expect_eq "nvme sanitize-log: completed, 3 passes, SCDW10 of the command" \
		"$(grep -c '"status":"(1)' "$T/san") $(json_field "$T/san" no_cmplted_passes) $(json_field "$T/san" cdw10_info)" \
		"1 3 $((3 | 3 << 4 | 1 << 8))"
else
	nok "nvme sanitize-log"
	diag "$(cat "$T/err")"
fi
if pre nvme sanitize $DEV -a 7 2>"$T/err"; then
	nok "nvme sanitize -a 7 (reserved action) accepted"
else
	ok "nvme sanitize -a 7: refused (Invalid Field)"
fi

# --- save_config / -c restores the endpoints (on a second private daemon)
stop_daemon
expect_eq "nvemud stops cleanly" "$DRC" 0
check "the MCTP socket is removed at shutdown" not [ -e "$MSOCK" ]
# The first config, with the second subsystem's endpoint, but bdev M2 is a RAM bdev: recreated.
check "nvemud -c restores" start_daemon -c "$T/cfg.json"
call nvme_mi_endpoint_list
expect_eq "both endpoints restored" "$(jget -l .)" 2
i=$(jget -f eid=20 .)
expect_eq "  EID 20 with MTU 128" "$(jget "$i.mtu")" 128
expect_eq "  and without the controller-0 alias" "$(jget "$i.ctrl_id0_alias")" false
if pre nvme id-ctrl mctp:1,20:1 -o json >"$T/idc4" 2>"$T/err"; then
	expect_eq "restored endpoint answers" "$(json_field "$T/idc4" sn)" MI2SERIAL
else
	nok "restored endpoint answers"
	diag "$(cat "$T/err")"
fi
if pre nvme sanitize-log mctp:1,20:1 -o json >"$T/san2" 2>"$T/err"; then
	expect_eq "after the restart: the Sanitize Status log still shows the block erase" \
		"$(grep -c '"status":"(1)' "$T/san2") $(json_field "$T/san2" cdw10_info)" "1 2"
else
	nok "nvme sanitize-log mctp:1,20:1 after the restart"
	diag "$(cat "$T/err")"
fi
