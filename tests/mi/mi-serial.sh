#!/bin/sh
# SPDX-License-Identifier: MIT
# NVMe-MI endpoints of nvemud on DSP0253 serial lines (a pty, a unix socket, a
# TCP socket on loopback), driven by serial-peer, a requester that shares no
# code with nvemu: MCTP control, NVMe-MI commands with their MIC, the
# transmission unit a serial line can carry, one peer per line, save_config.
. "$(dirname "$0")/../daemon/lib.sh"

for v in SERIAL_PEER MCTP_PRELOAD MCTP_CTL; do
	eval "p=\${$v:-}"
	if [ -z "$p" ] || [ ! -e "$p" ]; then
		nok "$v not set (a missing tool fails, never skips)"
		exit 1
	fi
done

NQN=nqn.2024-01.io.nvemu:serial
MSOCK=$T/mctp.sock
PRELOAD=$MCTP_PRELOAD
asan=$(ldd "$MCTP_PRELOAD" 2>/dev/null | sed -n 's/.*\(libasan[^ ]*\) => \([^ ]*\).*/\2/p')
if [ -n "$asan" ]; then
	PRELOAD="$asan:$MCTP_PRELOAD"
	export ASAN_OPTIONS=detect_leaks=0
fi

# Get Endpoint ID; Read NVMe-MI Data Structure (subsystem information);
# Configuration Set of the MCTP transmission unit to 128, then to 64 (port 0).
GET_EID=008102
READ_SUBSYS=84080000000000000000000000000000
MTU128=84080000030000000300000080000000
MTU64=84080000030000000300000040000000

check "nvemud starts" start_daemon
rpc nvme_subsystem_create --nqn $NQN --serial_number SERIAL0001 >/dev/null
for i in 1 2 3; do
	rpc nvme_subsystem_add_port --nqn $NQN --type two_wire >/dev/null
done
# field KEY=VALUE PATH: PATH in the element of the array OUT whose KEY is VALUE.
field() {
	_i=$(jget -f "$1" .) && jget "$_i.$2"
}

call nvme_subsystem_list
P1=$(field nqn=$NQN ports.0.id)
P2=$(field nqn=$NQN ports.1.id)
P3=$(field nqn=$NQN ports.2.id)
[ -n "$P1" ] && [ -n "$P3" ] && ok "three two-wire ports" || {
	nok "three two-wire ports"
	diag "$OUT"
}

# --- bad input
expect_err "binding must be mctp or serial" -32602 "binding" nvme_mi_endpoint_create \
	--nqn $NQN --port "$P1" --net 2 --eid 32 --binding can
expect_err "binding serial needs serial" -32602 "serial" nvme_mi_endpoint_create \
	--nqn $NQN --port "$P1" --net 2 --eid 32 --binding serial
expect_err "serial without binding serial" -32602 "serial" nvme_mi_endpoint_create \
	--nqn $NQN --port "$P1" --net 2 --eid 32 --serial pty
expect_err "a serial line carries 64-byte units" -32602 "mtu" nvme_mi_endpoint_create \
	--nqn $NQN --port "$P1" --net 2 --eid 32 --binding serial --serial pty --mtu 128
expect_err "an unknown line kind" -32602 "serial" nvme_mi_endpoint_create \
	--nqn $NQN --port "$P1" --net 2 --eid 32 --binding serial --serial /dev/ttyS0
expect_err "a relative unix path" -32602 "serial" nvme_mi_endpoint_create \
	--nqn $NQN --port "$P1" --net 2 --eid 32 --binding serial --serial unix:rel.sock
expect_err "a TCP address that is not numeric" -32602 "serial" nvme_mi_endpoint_create \
	--nqn $NQN --port "$P1" --net 2 --eid 32 --binding serial --serial tcp:localhost:0

# --- a pty
expect_ok "endpoint on a pty (network 2, EID 0x20)" nvme_mi_endpoint_create --nqn $NQN \
	--port "$P1" --net 2 --eid 32 --binding serial --serial pty --baud 115200
PTS=$(jget serial_path)
case "$PTS" in /dev/pts/*) ok "the result names the pty: $PTS" ;; *) nok "pty name: $OUT" ;; esac
"$SERIAL_PEER" "pty:$PTS" 0x20 $GET_EID $READ_SUBSYS $MTU128 $MTU64 >"$T/pty.out" 2>"$T/pty.err"
expect_eq "Get Endpoint ID over the pty: EID 0x20, static" "$(sed -n 1p "$T/pty.out")" \
	00010200200200
case "$(sed -n 2p "$T/pty.out")" in
8488000000200000020102*) ok "Read NVMe-MI Data Structure over the pty: 3 ports (NUMP 2), MI 1.2" ;;
*) nok "Read NVMe-MI Data Structure: $(sed -n 2p "$T/pty.out") $(cat "$T/pty.err")" ;;
esac
case "$(sed -n 3p "$T/pty.out")" in
8488000004*) ok "Configuration Set MTU 128 on a serial line: Invalid Parameter" ;;
*) nok "MTU 128: $(sed -n 3p "$T/pty.out")" ;;
esac
case "$(sed -n 4p "$T/pty.out")" in
8488000000*) ok "Configuration Set MTU 64: Success" ;;
*) nok "MTU 64: $(sed -n 4p "$T/pty.out")" ;;
esac
out=$(LD_PRELOAD="$PRELOAD" NVEMU_MCTP_SOCKET="$MSOCK" "$MCTP_CTL" 2 32 0 8102 300 2>/dev/null)
[ $? -eq 2 ] && ok "the AF_MCTP router does not reach a serial endpoint" ||
	nok "router reached the serial endpoint: $out"

# --- a unix socket, one peer at a time
expect_ok "endpoint on a unix socket (network 3, EID 0x21)" nvme_mi_endpoint_create \
	--nqn $NQN --port "$P2" --net 3 --eid 33 --binding serial --serial "unix:$T/mi.sock"
expect_eq "the result names the socket" "$(jget serial_path)" "$T/mi.sock"
"$SERIAL_PEER" "unix:$T/mi.sock" 0x21 $GET_EID sleep sleep $GET_EID >"$T/a.out" 2>&1 &
APID=$!
sleep 0.5
"$SERIAL_PEER" "unix:$T/mi.sock" 0x21 $GET_EID >"$T/b.out" 2>&1
wait $APID
expect_eq "first peer answered before and after holding the line" "$(tr '\n' ' ' <"$T/a.out")" \
	"00010200210200 00010200210200 "
expect_eq "a second peer meanwhile is turned away" "$(cat "$T/b.out")" closed
"$SERIAL_PEER" "unix:$T/mi.sock" 0x21 $GET_EID >"$T/c.out" 2>&1
expect_eq "the next peer after the first left is served" "$(cat "$T/c.out")" 00010200210200

# --- TCP on loopback
expect_ok "endpoint on TCP 127.0.0.1, any port (network 4, EID 0x22)" \
	nvme_mi_endpoint_create --nqn $NQN --port "$P3" --net 4 --eid 34 --binding serial \
	--serial tcp:127.0.0.1:0
ADDR=$(jget serial_path)
case "$ADDR" in 127.0.0.1:[1-9]*) ok "bound $ADDR" ;; *) nok "TCP address: $OUT" ;; esac
"$SERIAL_PEER" "tcp:$ADDR" 0x22 $GET_EID $READ_SUBSYS >"$T/tcp.out" 2>&1
expect_eq "Get Endpoint ID over TCP" "$(sed -n 1p "$T/tcp.out")" 00010200220200
case "$(sed -n 2p "$T/tcp.out")" in
8488000000200000*) ok "Read NVMe-MI Data Structure over TCP" ;;
*) nok "over TCP: $(cat "$T/tcp.out")" ;;
esac

# --- list, save_config, destroy
call nvme_mi_endpoint_list --nqn $NQN
expect_eq "listed with binding serial" "$(field eid=33 binding)" serial
expect_eq "listed with its line" "$(field eid=33 serial)" "unix:$T/mi.sock"
expect_eq "a pty is always connected" "$(field eid=32 connected)" true
call save_config
printf '%s' "$OUT" >"$T/cfg.json"
check "save_config keeps the serial bindings" sh -c \
	'grep -q "\"serial\": *\"unix:$1/mi.sock\"" "$2" && grep -q "\"binding\": *\"serial\"" "$2"' \
	- "$T" "$T/cfg.json"
expect_ok "destroy the unix-socket endpoint" nvme_mi_endpoint_destroy --net 3 --eid 33
check "its socket file is gone" not test -e "$T/mi.sock"
check "nvemud still serves" daemon_alive

# --- nvemud --mi-serial: the default configuration's endpoint on a line
stop_daemon
check "nvemud --mi-serial unix:PATH starts" start_daemon --mi-serial "unix:$T/def.sock"
"$SERIAL_PEER" "unix:$T/def.sock" 9 $GET_EID >"$T/def.out" 2>&1
expect_eq "the default endpoint (EID 9) answers on the line" "$(cat "$T/def.out")" 00010200090200
call nvme_mi_endpoint_list
expect_eq "and is listed as serial" "$(field eid=9 binding)" serial
stop_daemon
"$NVEMUD" -r "$T/sock2" -l none -m none -u none --mi-serial bogus >"$T/bad.log" 2>&1
rc=$?
check "a bad --mi-serial line fails the start with a message" \
	sh -c '[ "$1" -ne 0 ] && grep -q "mi-serial" "$2"' - "$rc" "$T/bad.log"
