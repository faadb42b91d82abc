#!/bin/sh
# SPDX-License-Identifier: MIT
# A virtio-blk export named by SN:n<NSID> where SN is the serial number of a
# controller driven through bdev_nvme (not an nvemu subsystem's): nvemud A
# serves a subsystem over NVMe/TCP on 127.0.0.1, nvemud B attaches it. Until
# B has a namespace on the driven namespace's bdev, the export fails naming
# that bdev; then it targets that namespace.
. "$(dirname "$0")/../daemon/lib.sh"

SA=$T/a.sock
SB=$T/b.sock
NQA=nqn.2024-01.io.nvemu:vsn-a
NQB=nqn.2024-01.io.nvemu:vsn-b
APID=
BPID=

# up SOCK PID: wait until the daemon answers (10 s).
up() {
	_i=0
	while [ $_i -lt 200 ]; do
		kill -0 "$2" 2>/dev/null || return 1
		"$NVEMU_RPC" -s "$1" -t 2 rpc_get_methods >/dev/null 2>&1 && return 0
		sleep 0.05
		_i=$((_i + 1))
	done
	return 1
}
cleanup() {
	for p in $APID $BPID; do
		kill -TERM "$p" 2>/dev/null
	done
	wait 2>/dev/null
}
trap 'cleanup; _finish' EXIT

"$NVEMUD" -r "$SA" -l none -m none -u none >>"$T/a.log" 2>&1 &
APID=$!
check "nvemud A starts" up "$SA" $APID
check "A: subsystem SN VSNA0001 with a namespace" sh -c '
	"$1" -s "$2" bdev_malloc_create --name M0 --num_blocks 8192 --block_size 512 >/dev/null &&
	"$1" -s "$2" nvme_subsystem_create --nqn "$3" --serial_number VSNA0001 >/dev/null &&
	"$1" -s "$2" nvme_namespace_create --nqn "$3" --bdev_name M0 --nsid 1 >/dev/null' \
	- "$NVEMU_RPC" "$SA" $NQA
PA=$("$NVEMU_RPC" -s "$SA" nvmf_subsystem_add_listener --nqn $NQA --trtype tcp \
	--traddr 127.0.0.1 --trsvcid 0 --adrfam ipv4 | "$JSON_GET" trsvcid)
check "A listens on 127.0.0.1:$PA" [ "${PA:-0}" -gt 0 ]

"$NVEMUD" -r "$SB" -l none -m none -u none >>"$T/b.log" 2>&1 &
BPID=$!
check "nvemud B starts" up "$SB" $BPID
SOCK=$SB
expect_ok "B attaches A" bdev_nvme_attach_controller --name NV0 --trtype tcp \
	--traddr 127.0.0.1 --trsvcid "$PA" --subnqn $NQA --adrfam ipv4
expect_eq "... bdev NV0n1" "$(jget 0)" NV0n1

expect_err "export SN:n1 before a namespace backs NV0n1: the error names the bdev" -32000 \
	"device: VSNA0001:n1 is bdev NV0n1, which backs no namespace: create one with nvme_namespace_create" \
	virtio_blk_controller_create --ctrl V1 --socket "$T/v1.sock" --device VSNA0001:n1
expect_err "an unknown serial is still an error" -32000 "VSNX" \
	virtio_blk_controller_create --ctrl V1 --socket "$T/v1.sock" --device VSNX:n1
expect_ok "B: a subsystem with a namespace (NSID 5) on NV0n1" nvme_subsystem_create \
	--nqn $NQB --serial_number VSNB0001
expect_ok "... namespace" nvme_namespace_create --nqn $NQB --bdev_name NV0n1 --nsid 5
expect_ok "export by the driven controller's SN:n1" virtio_blk_controller_create --ctrl V1 \
	--socket "$T/v1.sock" --device VSNA0001:n1
call virtio_blk_controller_list --ctrl V1
expect_eq "its target is B's namespace 5 of $NQB, whole" \
	"$(jget 0.attached) $(jget 0.target.nqn) $(jget 0.target.nsid) $(jget 0.device)" \
	"true $NQB 5 VSNA0001:n1"
expect_eq "capacity: the namespace's 8192 sectors" "$(jget 0.capacity)" 8192
expect_ok "B's own serial still names its own subsystem" virtio_blk_controller_create \
	--ctrl V2 --socket "$T/v2.sock" --device VSNB0001:n5
call virtio_blk_controller_list --ctrl V2
expect_eq "... namespace 5 of $NQB" "$(jget 0.target.nqn) $(jget 0.target.nsid)" "$NQB 5"
expect_ok "destroy V1" virtio_blk_controller_destroy --ctrl V1
expect_ok "destroy V2" virtio_blk_controller_destroy --ctrl V2
check "B is alive" kill -0 $BPID

# nvemud --client --device SN:n1: the configuration attaches the controller and
# creates the namespace before the command line's exports start.
expect_ok "B: save_config" save_config --filename "$T/b.json"
kill -TERM $BPID
wait $BPID
"$NVEMUD" -r "$SB" -l none -m none -u none -c "$T/b.json" --client "$T/c1.sock" \
	--device VSNA0001:n1 >>"$T/b.log" 2>&1 &
BPID=$!
check "B restarts with the configuration and --client --device VSNA0001:n1" up "$SB" $BPID
call virtio_blk_controller_list
expect_eq "the --client export targets namespace 5 of $NQB" \
	"$(jget 0.attached) $(jget 0.target.nqn) $(jget 0.target.nsid)" "true $NQB 5"
