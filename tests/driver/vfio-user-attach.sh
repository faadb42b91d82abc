#!/bin/sh
# SPDX-License-Identifier: MIT
# bdev_nvme over vfio-user between two daemons: nvemud A serves a PCIe
# controller on a vfio-user socket (and the same subsystem over NVMe/TCP);
# nvemud B attaches that controller (bdev_nvme_attach_controller --trtype
# vfio-user), puts a namespace on the resulting bdev and serves it over
# NVMe/TCP. nvemu-perf --verify writes through one daemon and reads back
# through the other, both ways; then again with nosgl and nomsix (INTx).
. "$(dirname "$0")/../daemon/lib.sh"

if [ -z "${NVEMU_PERF:-}" ] || [ ! -x "$NVEMU_PERF" ]; then
	nok "NVEMU_PERF not set or not executable"
	exit 1
fi

SA=$T/a.sock
SB=$T/b.sock
VFU=$T/a-vfu.sock
NQA=nqn.2024-01.io.nvemu:vfu-a
NQB=nqn.2024-01.io.nvemu:vfu-b
APID=
BPID=

ra() { "$NVEMU_RPC" -s "$SA" -t 10 "$@"; }
rb() { "$NVEMU_RPC" -s "$SB" -t 10 "$@"; }

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

perf() {
	"$NVEMU_PERF" --quiet "$@" >"$T/perf.out" 2>&1
	_rc=$?
	sed 's/^/# /' "$T/perf.out"
	return $_rc
}

# --- A: a 16 MiB RAM namespace behind a vfio-user controller and a TCP listener
"$NVEMUD" -r "$SA" -l none -m none -u none >>"$T/a.log" 2>&1 &
APID=$!
check "nvemud A starts" up "$SA" $APID
check "A: bdev, subsystem, namespace" sh -c '
	"$1" -s "$2" bdev_malloc_create --name M0 --num_blocks 32768 --block_size 512 >/dev/null &&
	"$1" -s "$2" nvme_subsystem_create --nqn "$3" --serial_number VFUA0001 >/dev/null &&
	"$1" -s "$2" nvme_namespace_create --nqn "$3" --bdev_name M0 --nsid 1 >/dev/null' \
	- "$NVEMU_RPC" "$SA" $NQA
CA=$(ra nvme_controller_create --nqn $NQA --socket "$VFU" --num_queues 4 | "$JSON_GET" .)
check "A: controller $CA on a vfio-user socket" [ -S "$VFU" ]
check "A: namespace 1 attached to it" sh -c '"$1" -s "$2" nvme_controller_attach_ns -c "$3" -n 1 >/dev/null' \
	- "$NVEMU_RPC" "$SA" "$CA"
PA=$(ra nvmf_subsystem_add_listener --nqn $NQA --trtype tcp --traddr 127.0.0.1 --trsvcid 0 \
	--adrfam ipv4 | "$JSON_GET" trsvcid)
check "A listens on 127.0.0.1:$PA" [ "${PA:-0}" -gt 0 ]

# --- B attaches A's PCIe controller
"$NVEMUD" -r "$SB" -l none -m none -u none >>"$T/b.log" 2>&1 &
BPID=$!
check "nvemud B starts" up "$SB" $BPID
SOCK=$SB
call bdev_nvme_attach_controller --name NV --trtype vfio-user --traddr "$VFU" --num_io_queues 2
if printf '%s' "$ERR" | grep -q "not in this build"; then
	# src/driver/transports.c lists the transports linked in; until it names
	# drv_vfio_user_ops the daemon cannot reach this one.
	ok "# SKIP the vfio-user host transport is not in nvemud's transport table"
	exit 0
fi
expect_eq "bdev_nvme_attach_controller --trtype vfio-user returns the namespace's bdev" \
	"$(jget 0)" NVn1
call bdev_nvme_get_controllers --name NV
expect_eq "get_controllers: enabled, A's serial, 2 queues, trtype vfio-user" \
	"$(jget 0.state) $(jget 0.serial_number) $(jget 0.num_io_queues) $(jget 0.trid.trtype)" \
	"enabled VFUA0001 2 vfio-user"
expect_eq "get_controllers: namespace 1 is NVn1 of 32768 blocks" \
	"$(jget 0.namespaces.0.bdev_name) $(jget 0.namespaces.0.num_blocks)" "NVn1 32768"
SOCK=$SA
call nvme_controller_debug_get -c "$CA"
expect_eq "A sees one vfio-user client" "$(jget pcie.vfio_user.connects)" 1
SOCK=$SB
expect_err "a second attach of the socket is refused by A's server" -32005 "" \
	bdev_nvme_attach_controller --name NV2 --trtype vfio-user --traddr "$VFU"
expect_err "attach to a missing socket" -32005 "connect" \
	bdev_nvme_attach_controller --name NX --trtype vfio-user --traddr "$T/none.sock"

# export NAME: B serves bdev NAME as namespace 1 of NQB on a new listener; sets PB.
export_b() {
	rb nvme_subsystem_create --nqn $NQB --serial_number VFUB0001 >/dev/null 2>&1
	rb nvme_namespace_create --nqn $NQB --bdev_name "$1" --nsid 1 >/dev/null &&
	PB=$(rb nvmf_subsystem_add_listener --nqn $NQB --trtype tcp --traddr 127.0.0.1 \
		--trsvcid 0 --adrfam ipv4 | "$JSON_GET" trsvcid) && [ "${PB:-0}" -gt 0 ]
}

# round_trips SEED: writes through B read back through A, and the other way.
round_trips() {
	TA="trtype:tcp traddr:127.0.0.1 trsvcid:$PA subnqn:$NQA"
	TB="trtype:tcp traddr:127.0.0.1 trsvcid:$PB subnqn:$NQB"
	check "nvemu-perf --verify: 4 KiB writes through B (over vfio-user)" \
		perf -r "$TB" -w write -V -o 4096 -q 8 -N 1024 --seed "$1"
	check "nvemu-perf --verify: the same blocks read through A" \
		perf -r "$TA" -w read -V -o 4096 -q 8 -N 1024 --seed "$1"
	check "nvemu-perf --verify: 128 KiB writes through A" \
		perf -r "$TA" -w write -V -o 131072 -q 4 -N 64 --seed $(($1 + 1))
	check "nvemu-perf --verify: read back through B (PRP lists or SGL segments)" \
		perf -r "$TB" -w read -V -o 131072 -q 4 -P 2 -N 64 --seed $(($1 + 1))
	perf -r "$TB" -w read -V -o 4096 -q 4 -N 16 --seed $(($1 + 7)) >"$T/bad.out" 2>&1
	check "nvemu-perf --verify: the wrong seed fails" sh -c '[ $1 -eq 1 ]' - $?
	check "random mixed load through B for 2 s" \
		perf -r "$TB" -w randrw -M 70 -o 4096 -q 32 -P 2 -t 2
}

check "B exports NVn1 over NVMe/TCP" export_b NVn1
round_trips 21

# --- again with PRPs only and INTx
check "B: namespace and listener removed" sh -c '
	"$1" -s "$2" nvmf_subsystem_remove_listener --nqn "$3" --trtype tcp --traddr 127.0.0.1 \
		--trsvcid "$4" --adrfam ipv4 >/dev/null &&
	"$1" -s "$2" nvme_namespace_destroy --nqn "$3" --nsid 1 >/dev/null' \
	- "$NVEMU_RPC" "$SB" $NQB "$PB"
expect_ok "detach NV" bdev_nvme_detach_controller --name NV
expect_ok "attach again with nosgl and nomsix" bdev_nvme_attach_controller --name NP \
	--trtype vfio-user --traddr "$VFU" --nosgl true --nomsix true --num_io_queues 2
expect_eq "... its bdev" "$(jget 0)" NPn1
check "B exports NPn1" export_b NPn1
round_trips 31

call save_config
check "save_config keeps the vfio-user attach with nosgl and nomsix" \
	sh -c 'printf "%s" "$1" | tr -d " \n" |
		grep -q "bdev_nvme_attach_controller.*\"trtype\":\"vfio-user\".*\"nosgl\":true"' \
	- "$OUT"
check "B is alive" kill -0 $BPID
check "A is alive" kill -0 $APID
