#!/bin/sh
# SPDX-License-Identifier: MIT
# Two nvemud gateways export one RBD image as one subsystem (same NQN,
# serial number, namespace UUID/NGUID/EUI-64), each with its own NVMe/TCP
# listener, both in exclusive mode (docs/gateway.md). The gateway holding
# RBD's exclusive lock is the optimized path; the other reports its path
# inaccessible and refuses writes with the ANA Inaccessible path status.
# Killing the active gateway (SIGKILL, no goodbye) hands the lock to the
# standby once the cluster drops the dead one's watch (10 s here): the standby
# blocklists it, turns optimized, and the data written through the dead
# gateway verifies through the survivor, which then takes writes.
#
# The host is nvemu-perf on the host's loopback, playing what Linux native
# multipath does (send to the optimized path, move on a path error): the
# guest harness has no network to reach gateways that run next to the
# cluster (docs/rbd.md, "Testing").
. "$(dirname "$0")/../daemon/lib.sh"
. "$(dirname "$0")/lib.sh"

NQ=nqn.2024-01.io.nvemu:rbd-gw
UUID=5b0c8b8e-1f7e-4a49-9a8e-7d3f0e1c2a11
NGUID=5b0c8b8e1f7e4a499a8e7d3f0e1c2a11
EUI=0025380a1b2c3d4e
SA=$T/a.sock
SB=$T/b.sock
APID=
BPID=

ceph_start || exit 1
check "pool and 64 MiB image" ceph_image gw 64M

ra() { "$NVEMU_RPC" -s "$SA" -t 30 "$@"; }
rb() { "$NVEMU_RPC" -s "$SB" -t 30 "$@"; }

# gateway NAME SOCK MIN MAX: a daemon exporting rbd/gw, handing out controller IDs
# MIN..MAX (a host refuses two controllers of one subsystem with one ID); sets its
# port in PORT_<NAME>.
gateway() {
	"$NVEMUD" -r "$2" -l none -m none -u none >>"$T/$1.log" 2>&1 &
	eval "${1}PID=\$!"
	_bg_pids="$_bg_pids $!"
	_i=0
	until "$NVEMU_RPC" -s "$2" -t 2 rpc_get_methods >/dev/null 2>&1; do
		_i=$((_i + 1))
		[ $_i -lt 200 ] || return 1
		sleep 0.05
	done
	_r() { "$NVEMU_RPC" -s "$2" -t 30 "$@" >/dev/null; }
	"$NVEMU_RPC" -s "$2" -t 30 bdev_rbd_create -b GW --pool_name rbd --rbd_name gw \
		--config_file "$C/ceph.conf" --exclusive 1 >/dev/null &&
		"$NVEMU_RPC" -s "$2" nvme_subsystem_create --nqn $NQ --serial_number GW000001 \
			--ana_reporting 1 --min_cntlid "$3" --max_cntlid "$4" >/dev/null &&
		"$NVEMU_RPC" -s "$2" nvme_namespace_create --nqn $NQ --bdev_name GW --nsid 1 \
			--uuid $UUID --nguid $NGUID --eui64 $EUI --anagrpid 1 >/dev/null &&
		_p=$("$NVEMU_RPC" -s "$2" nvmf_subsystem_add_listener --nqn $NQ --trtype tcp \
			--traddr 127.0.0.1 --trsvcid 0 --adrfam ipv4 | "$JSON_GET" trsvcid) &&
		eval "PORT_$1=$_p"
}

owner() { "$NVEMU_RPC" -s "$1" bdev_rbd_list -b GW | "$JSON_GET" 0.lock_owner; }
ana() { "$NVEMU_RPC" -s "$1" nvmf_subsystem_get_listeners --nqn $NQ | tr -d ' \n' |
	sed 's/.*"ana_state":"\([a-z_]*\)".*/\1/'; }
is_owner() { [ "$(owner "$1")" = "$2" ]; }
is_ana() { [ "$(ana "$1")" = "$2" ]; }

check "gateway A exports rbd/gw (exclusive)" gateway A "$SA" 1 99
check "gateway B exports rbd/gw (exclusive)" gateway B "$SB" 100 199
TA="trtype:tcp traddr:127.0.0.1 trsvcid:$PORT_A subnqn:$NQ"
TB="trtype:tcp traddr:127.0.0.1 trsvcid:$PORT_B subnqn:$NQ"
diag "A: 127.0.0.1:$PORT_A, B: 127.0.0.1:$PORT_B"

check "A, created first, holds the lock" is_owner "$SA" true
check "B does not" is_owner "$SB" false
check "A's path is optimized" wait_for 5 is_ana "$SA" optimized
check "B's path is inaccessible" wait_for 5 is_ana "$SB" inaccessible
ns_id() { "$NVEMU_RPC" -s "$1" nvme_namespace_list --nqn $NQ | tr -d ' \n' |
	grep -o '"uuid":"[^"]*","nguid":"[^"]*","eui64":"[^"]*"'; }
check "both export the same namespace identity (UUID, NGUID, EUI-64)" \
	sh -c '[ -n "$1" ] && [ "$1" = "$2" ]' - "$(ns_id "$SA")" "$(ns_id "$SB")"

check "nvemu-perf --verify through A (the optimized path)" \
	perf -r "$TA" -w write -V -o 4096 -q 16 -N 2048 --range 8388608 --seed 21
perf -r "$TB" -w write -o 4096 -q 4 -N 16 --range 8388608 --seed 22
check "writes through B fail (B does not hold the lock)" [ $? -ne 0 ]
"$NVEMU_PERF" -r "$TB" -w write -o 4096 -q 1 -N 1 --range 8388608 >"$T/b-err.out" 2>&1
sed 's/^/# /' "$T/b-err.out"
check "... with the ANA Inaccessible path status (0x302)" grep -q "status 0x302" "$T/b-err.out"
check "A still verifies: B's refused writes changed nothing" \
	perf -r "$TA" -w read -V -o 4096 -q 16 -N 2048 --range 8388608 --seed 21

# --- the active gateway dies
perf -r "$TA" -w write -V -o 4096 -q 8 -t 8 --range 8388608 --seed 21 >/dev/null 2>&1 &
LPID=$!
_bg_pids="$_bg_pids $LPID"
sleep 2
cntlid() { "$NVEMU_RPC" -s "$1" nvmf_subsystem_get_controllers --nqn $NQ | "$JSON_GET" 0.cntlid; }
in_range() { _c=$(cntlid "$1"); [ -n "$_c" ] && [ "$_c" -ge "$2" ] && [ "$_c" -le "$3" ]; }
check "the host's controller on A has an ID in A's range 1..99" in_range "$SA" 1 99
kill -KILL "$APID"
s=$(date +%s)
wait $LPID
check "the load through A ends when A dies (no hang)" true
check "B takes the lock (A's watch expires, A is blocklisted)" wait_for 40 is_owner "$SB" true
e=$(date +%s)
diag "B took over $((e - s)) s after A died"
check "B's path turns optimized" wait_for 5 is_ana "$SB" optimized
check "A is on the cluster's blocklist" sh -c 'timeout 30 ceph -c "$1" osd blocklist ls 2>&1 | grep -q "127.0.0.1"' - "$C/ceph.conf"
check "what A wrote verifies through B" \
	perf -r "$TB" -w read -V -o 4096 -q 16 -N 2048 --range 8388608 --seed 21
check "B takes writes now (nvemu-perf --verify)" \
	perf -r "$TB" -w write -V -o 4096 -q 16 -N 2048 --range 8388608 --seed 23
perf -r "$TB" -w randread -o 4096 -q 4 -t 3 --range 8388608 >/dev/null 2>&1 &
LPID=$!
_bg_pids="$_bg_pids $LPID"
sleep 1
check "the host's controller on B has an ID in B's range 100..199" in_range "$SB" 100 199
wait $LPID
check "B's writes are in the cluster: rbd export == reads through B" \
	sh -c 'timeout 60 rbd -c "$1" export rbd/gw "$2" >/dev/null 2>&1' - "$C/ceph.conf" "$T/gw.img"
"$NVEMU_RPC" -s "$SB" bdev_file_create -b F --filename "$T/gw.img" >/dev/null
"$NVEMU_RPC" -s "$SB" nvme_subsystem_create --nqn $NQ-x --serial_number GWX00001 >/dev/null
"$NVEMU_RPC" -s "$SB" nvme_namespace_create --nqn $NQ-x --bdev_name F --nsid 1 >/dev/null
PX=$("$NVEMU_RPC" -s "$SB" nvmf_subsystem_add_listener --nqn $NQ-x --trtype tcp \
	--traddr 127.0.0.1 --trsvcid 0 --adrfam ipv4 | "$JSON_GET" trsvcid)
check "the exported image holds B's pattern" \
	perf -r "trtype:tcp traddr:127.0.0.1 trsvcid:$PX subnqn:$NQ-x" -w read -V -o 4096 -q 16 \
	-N 2048 --range 8388608 --seed 23
