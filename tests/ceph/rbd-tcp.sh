#!/bin/sh
# SPDX-License-Identifier: MIT
# RBD namespaces against a real Ceph cluster: tests/ceph/cluster.sh starts
# one monitor and one BlueStore OSD from Debian's packages on 127.0.0.1
# under this test's directory, with cephx keys made here.
#
# The host is nvemu-perf over NVMe/TCP on the host's loopback, not a Linux
# kernel in the QEMU guest: the guest has no network, and the nvemud that
# talks to Ceph must run next to the cluster (docs/rbd.md, "Testing").
#
#  - bdev_rbd_create: parameter errors name the field; an unreachable
#    cluster, a missing pool or image fail with a clear error in bounded time;
#  - nvemu-perf --verify writes and reads back through nvemud; `rbd export`
#    of the image, served again as a file bdev, reads back the same pattern;
#  - `rbd resize` reaches the namespace; save_config keeps the bdev without
#    the cephx key (with it under --secrets) and nvemud -c brings it back;
#  - the OSD stopped and restarted under a verifying load: nothing hangs,
#    I/O resumes, the load finishes without errors; with a short
#    rados_osd_op_timeout, I/O during an outage fails with Namespace Not Ready
#    instead of waiting, and works again once the OSD is back.
. "$(dirname "$0")/../daemon/lib.sh"
. "$(dirname "$0")/lib.sh"

NQ=nqn.2024-01.io.nvemu:rbd
ceph_start || exit 1
check "pool and 64 MiB image" ceph_image img0 64M
check "cephx user client.nvemu (profile rbd)" ceph_user nvemu
KEY=$(cat "$C/nvemu.key")

check "nvemud starts" start_daemon -u none

# --- parameter errors and an unreachable cluster
call bdev_rbd_create -b R0 --rbd_name img0
check "pool_name missing is named" sh -c 'echo "$1" | grep -q pool_name' - "$ERR"
call bdev_rbd_create -b R0 --pool_name rbd --rbd_name img0 --block_size 1000 \
	--config_file "$C/ceph.conf"
check "block_size 1000 is refused" sh -c '[ "$1" -ne 0 ] && echo "$2" | grep -q "block size"' - "$RC" "$ERR"
call bdev_rbd_create -b R0 --pool_name rbd --rbd_name img0 --config_param '["x"]'
check "config_param must be an object" sh -c '[ "$1" -ne 0 ] && echo "$2" | grep -q config_param' - "$RC" "$ERR"
s=$(date +%s)
call bdev_rbd_create -b R0 --pool_name rbd --rbd_name img0 \
	--config_param '{"mon_host": "127.0.0.1:1", "client_mount_timeout": "3"}'
e=$(date +%s)
diag "unreachable cluster: $ERR (after $((e - s)) s)"
check "an unreachable cluster fails create with a clear error" \
	sh -c '[ "$1" -ne 0 ] && echo "$2" | grep -q "unreachable"' - "$RC" "$ERR"
check "... within the mount timeout (<= 10 s)" [ $((e - s)) -le 10 ]
answers() { rpc rpc_get_methods >/dev/null; }
check "nvemud answered while that create waited" answers
call bdev_rbd_create -b R0 --pool_name nopool --rbd_name img0 --config_file "$C/ceph.conf"
check "a missing pool is named" sh -c '[ "$1" -ne 0 ] && echo "$2" | grep -q "pool_name nopool"' - "$RC" "$ERR"
call bdev_rbd_create -b R0 --pool_name rbd --rbd_name noimg --config_file "$C/ceph.conf"
check "a missing image is named" sh -c '[ "$1" -ne 0 ] && echo "$2" | grep -q "rbd_name noimg"' - "$RC" "$ERR"

# --- the bdev, as client.nvemu with its key given in config_param
expect_ok "bdev_rbd_create as client.nvemu" bdev_rbd_create -b R0 --pool_name rbd \
	--rbd_name img0 --user_id nvemu --config_file "$C/ceph.conf" \
	--config_param "{\"key\": \"$KEY\", \"keyring\": \"/nonexistent\"}"
call bdev_rbd_create -b R0 --pool_name rbd --rbd_name img0 --config_file "$C/ceph.conf"
check "a second R0 is refused (exists)" sh -c '[ "$1" -ne 0 ] && echo "$2" | grep -q exists' - "$RC" "$ERR"
rbd_blocks() { rpc bdev_rbd_list -b R0 | grep -q "\"num_blocks\": $1"; }
no_key() { ! rpc bdev_rbd_list | grep -q "$KEY"; }
ns_blocks() { rpc nvme_namespace_list --nqn $NQ | tr -d ' \n' | grep -q "$1"; }
check "bdev_rbd_list: 131072 blocks" rbd_blocks 131072
check "bdev_rbd_list shows no key" no_key
expect_ok "subsystem" nvme_subsystem_create --nqn $NQ --serial_number RBD00001
expect_ok "namespace on R0" nvme_namespace_create --nqn $NQ --bdev_name R0 --nsid 1
P=$(rpc nvmf_subsystem_add_listener --nqn $NQ --trtype tcp --traddr 127.0.0.1 --trsvcid 0 \
	--adrfam ipv4 | "$JSON_GET" trsvcid)
check "listener on 127.0.0.1:$P" [ "${P:-0}" -gt 0 ]
TR="trtype:tcp traddr:127.0.0.1 trsvcid:$P subnqn:$NQ"

check "nvemu-perf --verify: 128 KiB writes, 2 queues, over 32 MiB" \
	perf -r "$TR" -w write -V -o 131072 -q 8 -P 2 -N 256 --range 33554432 --seed 6 --nsid 1
check "nvemu-perf --verify: read back" \
	perf -r "$TR" -w read -V -o 131072 -q 8 -N 256 --range 33554432 --seed 6
check "nvemu-perf --verify: 4 KiB writes over the first 16 MiB" \
	perf -r "$TR" -w write -V -o 4096 -q 32 -N 4096 --range 16777216 --seed 5
check "nvemu-perf --verify: read back" \
	perf -r "$TR" -w read -V -o 4096 -q 32 -N 4096 --range 16777216 --seed 5

# --- what nvemud wrote is what the cluster holds: rbd export, served as a file bdev
check "rbd export" cx rbd export rbd/img0 "$T/export.img"
expect_ok "the export as file bdev F0" bdev_file_create -b F0 --filename "$T/export.img"
expect_ok "subsystem for the export" nvme_subsystem_create --nqn $NQ-export --serial_number EXP00001
expect_ok "namespace on F0" nvme_namespace_create --nqn $NQ-export --bdev_name F0 --nsid 1
PE=$(rpc nvmf_subsystem_add_listener --nqn $NQ-export --trtype tcp --traddr 127.0.0.1 \
	--trsvcid 0 --adrfam ipv4 | "$JSON_GET" trsvcid)
check "the exported image holds nvemu's writes (seed 5 pattern verifies)" \
	perf -r "trtype:tcp traddr:127.0.0.1 trsvcid:$PE subnqn:$NQ-export" -w read -V -o 4096 \
	-q 32 -N 4096 --range 16777216 --seed 5
perf -r "trtype:tcp traddr:127.0.0.1 trsvcid:$PE subnqn:$NQ-export" -w read -V -o 4096 \
	-q 8 -N 64 --range 16777216 --seed 99 >/dev/null 2>&1
check "... and a wrong seed does not (the check can fail)" [ $? -ne 0 ]

# --- save_config: no key unless asked; nvemud -c restores the bdev
rpc save_config >"$T/cfg.json"
check "save_config has bdev_rbd_create" grep -q bdev_rbd_create "$T/cfg.json"
check "save_config has no cephx key" sh -c '! grep -q "$1" "$2"' - "$KEY" "$T/cfg.json"
rpc save_config --secrets 1 >"$T/cfg-secrets.json"
check "save_config --secrets has it" grep -q "$KEY" "$T/cfg-secrets.json"
rpc nvme_subsystem_destroy --nqn $NQ-export --force 1 >/dev/null
rpc bdev_delete -b F0 >/dev/null
rpc save_config --secrets 1 >"$T/cfg-secrets.json"
stop_daemon
check "nvemud -c with the saved configuration" start_daemon -u none -c "$T/cfg-secrets.json"
P=$(rpc nvmf_subsystem_get_listeners --nqn $NQ | "$JSON_GET" 0.address.trsvcid)
TR="trtype:tcp traddr:127.0.0.1 trsvcid:$P subnqn:$NQ"
check "after restart: the data reads back through the restored bdev" \
	perf -r "$TR" -w read -V -o 4096 -q 32 -N 4096 --range 16777216 --seed 5

# --- rbd resize reaches the namespace
check "rbd resize to 96 MiB" cx rbd resize --size 96M rbd/img0
wait_for 10 rbd_blocks 196608
check "bdev follows the image (196608 blocks)" rbd_blocks 196608
check "the namespace follows (Capacity Change)" ns_blocks 196608
check "I/O beyond the old end works" \
	perf -r "$TR" -w write -V -o 131072 -q 8 -N 768 --range 100663296 --seed 8

# --- OSD outage under a verifying load: held, then resumed. The outage
# stays well under the host's command timeout (30 s here, as Linux's).
check "the outage test's 1 MiB written first (seed 11)" \
	perf -r "$TR" -w write -V -o 4096 -q 16 -N 256 --range 1048576 --seed 11
perf -r "$TR" -w write -V -o 4096 -q 8 -t 14 --io-timeout 30 --range 1048576 --seed 11 >"$T/outage.out" 2>&1 &
LPID=$!
_bg_pids="$_bg_pids $LPID"
sleep 3
s=$(date +%s)
"$CLUSTER" osd-stop "$C"
check "nvemud answers RPCs while the OSD is down" answers
"$CLUSTER" osd-start "$C"
e=$(date +%s)
diag "OSD down and back up in $((e - s)) s"
wait $LPID
LRC=$?
sed 's/^/# /' "$T/outage.out"
check "the load through the outage finished with no errors or miscompares" \
	sh -c '[ "$1" -eq 0 ] && grep -q "errors 0, miscompares 0" "$2"' - $LRC "$T/outage.out"
check "and verifies afterwards" \
	perf -r "$TR" -w read -V -o 4096 -q 16 -N 256 --range 1048576 --seed 11

# --- a short op timeout: I/O during an outage fails, retryable, and works again
expect_ok "R1 with rados_osd_op_timeout 2" bdev_rbd_create -b R1 --pool_name rbd \
	--rbd_name img0 --config_file "$C/ceph.conf" --config_param '{"rados_osd_op_timeout": "2"}'
expect_ok "namespace 2 on R1" nvme_namespace_create --nqn $NQ --bdev_name R1 --nsid 2
"$CLUSTER" osd-stop "$C"
s=$(date +%s)
"$NVEMU_PERF" -r "$TR" --nsid 2 -w randread -o 4096 -q 4 -N 8 --range 16777216 >"$T/down.out" 2>&1
DRC=$?
e=$(date +%s)
sed 's/^/# /' "$T/down.out"
check "reads during the outage fail (not hang): $((e - s)) s" \
	sh -c '[ "$1" -ne 0 ] && [ "$2" -le 9 ]' - $DRC $((e - s))
check "... with Namespace Not Ready (retryable)" grep -q -i "not ready\|sct 0 sc 0x82\|0x82" "$T/down.out"
"$CLUSTER" osd-start "$C"
check "after the OSD is back, I/O on namespace 2 works" \
	perf -r "$TR" --nsid 2 -w read -V -o 4096 -q 16 -N 256 --range 1048576 --seed 11

# --- nvemud -c while the cluster is away: the RBD bdev and its namespace are
# left out (logged), the rest starts
cat >"$T/away.json" <<JSON
{"nvemu_config": 1, "calls": [
 {"method": "bdev_rbd_create", "params": {"name": "RA", "pool_name": "rbd", "rbd_name": "img0",
  "config_file": "$C/ceph.conf", "config_param": {"client_mount_timeout": "3"}}},
 {"method": "bdev_malloc_create", "params": {"name": "M0", "num_blocks": 2048}},
 {"method": "nvme_subsystem_create", "params": {"nqn": "$NQ-away"}},
 {"method": "nvme_namespace_create", "params": {"nqn": "$NQ-away", "bdev_name": "RA", "nsid": 1}},
 {"method": "nvme_namespace_create", "params": {"nqn": "$NQ-away", "bdev_name": "M0", "nsid": 2}}]}
JSON
stop_daemon
"$CLUSTER" mon-stop "$C"
check "nvemud -c starts with the monitor down" start_daemon -u none -c "$T/away.json"
away_ok() { rpc nvme_namespace_list --nqn $NQ-away | tr -d ' \n' | grep -q '"nsid":2' &&
	! rpc bdev_list | grep -q '"RA"' && grep -q "bdev RA skipped" "$T/daemon.log"; }
check "... without the RBD bdev and its namespace (logged), with the rest" away_ok
"$CLUSTER" mon-start "$C"
