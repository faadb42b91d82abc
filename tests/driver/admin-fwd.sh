#!/bin/sh
# SPDX-License-Identifier: MIT
# Admin command forwarding seen by a real host: nvemud A serves a PCIe
# controller over vfio-user with Identify CNS 1 and Set Features FID 0Bh
# forwarded to examples/admin-fwd-example; nvemud B's host driver attaches
# it (bdev_nvme_attach_controller --trtype vfio-user) and reports the model
# number it read. Then the forwarder is silent (timeout: nvemu answers),
# hostile (bad magic, wrong length), gone (nvemu answers at once); the
# controller is destroyed while a command is still forwarded; bad params.
. "$(dirname "$0")/../daemon/lib.sh"

if [ -z "${FWD_EXAMPLE:-}" ] || [ ! -x "$FWD_EXAMPLE" ]; then
	nok "FWD_EXAMPLE not set or not executable"
	exit 1
fi

SA=$T/a.sock
SB=$T/b.sock
FWD=$T/fwd.sock
NQA=nqn.2024-01.io.nvemu:fwd-a
APID=
BPID=
FPID=

ra() { "$NVEMU_RPC" -s "$SA" -t 20 "$@"; }
rb() { "$NVEMU_RPC" -s "$SB" -t 20 "$@"; }

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
	for p in $APID $BPID $FPID; do
		kill -TERM "$p" 2>/dev/null
	done
	wait 2>/dev/null
}
trap 'cleanup; _finish' EXIT

# fwd MODE: (re)start the example forwarder on $FWD in MODE.
fwd() {
	[ -n "$FPID" ] && kill -TERM "$FPID" 2>/dev/null && wait "$FPID" 2>/dev/null
	"$FWD_EXAMPLE" "$FWD" --model-number "forwarded by example" --mode "$1" >"$T/fwd-$1.out" 2>&1 &
	FPID=$!
	_i=0
	while [ ! -S "$FWD" ] && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done
	[ -S "$FWD" ]
}

# attach NAME: B attaches A's controller; sets OUT to get_controllers; prints seconds taken.
attach() {
	_t0=$(date +%s%N)
	rb bdev_nvme_attach_controller --name "$1" --trtype vfio-user --traddr "$VFU" \
		--num_io_queues 1 >/dev/null 2>"$T/attach.err" || { cat "$T/attach.err"; return 1; }
	ELAPSED_MS=$((($(date +%s%N) - _t0) / 1000000))
	OUT=$(rb bdev_nvme_get_controllers --name "$1")
}

detach() {
	rb bdev_nvme_detach_controller --name "$1" >/dev/null
}

VFU=$T/a-vfu.sock
"$NVEMUD" -r "$SA" -l none -m none -u none >>"$T/a.log" 2>&1 &
APID=$!
check "nvemud A starts" up "$SA" $APID
check "A: bdev, subsystem (model number 'nvemu A'), namespace" sh -c '
	"$1" -s "$2" bdev_malloc_create --name M0 --num_blocks 8192 --block_size 512 >/dev/null &&
	"$1" -s "$2" nvme_subsystem_create --nqn "$3" --serial_number FWDA0001 --model_number "nvemu A" >/dev/null &&
	"$1" -s "$2" nvme_namespace_create --nqn "$3" --bdev_name M0 --nsid 1 >/dev/null' \
	- "$NVEMU_RPC" "$SA" $NQA

# --- bad params, named in the error
SOCK=$SA
expect_err "admin_identify_cmd_fwd without 0x prefix is refused" -32602 "admin_identify_cmd_fwd: expected" \
	nvme_controller_create --nqn $NQA --admin_identify_cmd_fwd 1 --admin_cmd_fwd_socket "$FWD"
expect_err "a FID above 0xff is refused" -32602 "admin_set_features_cmd_fwd: 0x100" \
	nvme_controller_create --nqn $NQA --admin_set_features_cmd_fwd 0x0b,0x100 --admin_cmd_fwd_socket "$FWD"
expect_err "forwarding without a socket is refused" -32602 "admin_cmd_fwd_socket: required" \
	nvme_controller_create --nqn $NQA --admin_identify_cmd_fwd 0x1
expect_err "a relative socket is refused" -32602 "admin_cmd_fwd_socket: must be an absolute" \
	nvme_controller_create --nqn $NQA --admin_identify_cmd_fwd 0x1 --admin_cmd_fwd_socket rel.sock
expect_err "a timeout without forwarding is refused" -32602 "admin_cmd_fwd_timeout_ms: needs" \
	nvme_controller_create --nqn $NQA --admin_cmd_fwd_timeout_ms 100
expect_err "a timeout past 10 s is refused" -32602 "admin_cmd_fwd_timeout_ms" \
	nvme_controller_create --nqn $NQA --admin_identify_cmd_fwd 0x1 --admin_cmd_fwd_socket "$FWD" \
	--admin_cmd_fwd_timeout_ms 10001
call nvme_controller_list --nqn $NQA
expect_eq "no controller was left behind by the refused calls" "$(jget -c .)" "[]"

check "the example forwarder listens" fwd answer
CA=$(ra nvme_controller_create --nqn $NQA --socket "$VFU" --name FwdCtrl \
	--admin_identify_cmd_fwd "0x1, 0x0" --admin_set_features_cmd_fwd 0xb \
	--admin_cmd_fwd_socket "$FWD" --admin_cmd_fwd_timeout_ms 500 | "$JSON_GET" .)
expect_eq "A: controller created with forwarding" "$CA" FwdCtrl
ra nvme_controller_attach_ns -c FwdCtrl -n 1 >/dev/null
call nvme_controller_list -c FwdCtrl
expect_eq "list shows the forwarding params (normalized)" \
	"$(jget 0.admin_identify_cmd_fwd) $(jget 0.admin_set_features_cmd_fwd) $(jget 0.admin_cmd_fwd_timeout_ms)" \
	"0x0,0x1 0xb 500"

"$NVEMUD" -r "$SB" -l none -m none -u none >>"$T/b.log" 2>&1 &
BPID=$!
check "nvemud B starts" up "$SB" $BPID

# --- the forwarder answers: B's host driver reads its model number
check "B attaches A's controller over vfio-user" attach F1
expect_eq "the host sees the forwarder's model number, A's serial number" \
	"$(jget 0.model_number)|$(jget 0.serial_number)" "forwarded by example|FWDA0001"
check "the forwarder saw Identify CNS 1 of FwdCtrl" grep -q "identify ctrl=FwdCtrl cntlid=.* cns=0x1 local_status=0x0" "$T/fwd-answer.out"
check "the forwarder saw Set Features FID 0Bh" grep -q "set-features ctrl=FwdCtrl .*fid=0xb" "$T/fwd-answer.out"
check "the Set Features it did not ask for (FID 07h) stayed with nvemu" not grep -q "fid=0x7" "$T/fwd-answer.out"
SOCK=$SA
call nvme_controller_debug_get -c FwdCtrl
expect_eq "A counted answers, no fallback" \
	"$(jget admin_cmd_fwd.connected) $(jget admin_cmd_fwd.fallbacks) $(jget admin_cmd_fwd.bad_replies)" "true 0 0"
check "A counted at least 2 answered commands" [ "$(jget admin_cmd_fwd.answered)" -ge 2 ]
check "B detaches" detach F1

# --- the forwarder asks nvemu to answer
check "forwarder in fallback mode" fwd fallback
check "attach with a declining forwarder" attach F2
expect_eq "the host sees nvemu's model number" "$(jget 0.model_number)" "nvemu A"
check "B detaches" detach F2

# --- silent: every forwarded command waits for the timeout, then nvemu answers
check "forwarder in silent mode" fwd silent
check "attach with a silent forwarder still succeeds" attach F3
expect_eq "the host sees nvemu's model number" "$(jget 0.model_number)" "nvemu A"
check "the attach waited for the 500 ms timeout ($ELAPSED_MS ms)" [ "$ELAPSED_MS" -ge 500 ]
call nvme_controller_debug_get -c FwdCtrl
check "A counted the timeouts" [ "$(jget admin_cmd_fwd.timeouts)" -ge 2 ]
check "B detaches" detach F3

# --- hostile replies
check "forwarder sending a bad magic" fwd garbage
check "attach through a forwarder sending garbage" attach F4
expect_eq "the host sees nvemu's model number" "$(jget 0.model_number)" "nvemu A"
check "B detaches" detach F4
check "forwarder sending an Identify of 100 bytes" fwd badlen
check "attach through it" attach F5
expect_eq "the host sees nvemu's model number" "$(jget 0.model_number)" "nvemu A"
call nvme_controller_debug_get -c FwdCtrl
check "A counted bad replies" [ "$(jget admin_cmd_fwd.bad_replies)" -ge 2 ]
check "B detaches" detach F5

# --- the forwarder is gone: nvemu answers at once
kill -TERM "$FPID" 2>/dev/null
wait "$FPID" 2>/dev/null
FPID=
rm -f "$FWD"
check "attach with no forwarder listening" attach F6
expect_eq "the host sees nvemu's model number" "$(jget 0.model_number)" "nvemu A"
check "and did not wait for the timeout ($ELAPSED_MS ms)" [ "$ELAPSED_MS" -lt 500 ]
check "B detaches" detach F6

# --- save_config keeps the forwarding params
call save_config
check "save_config has the forwarding params" sh -c 'printf "%s" "$1" | grep -q "\"admin_cmd_fwd_socket\": *\"$2\""' - "$OUT" "$FWD"

# --- destroy while a forwarded command waits: it ends, nothing leaks
check "forwarder silent again" fwd silent
ra nvme_controller_destroy -c FwdCtrl --force >/dev/null 2>&1
CB=$(ra nvme_controller_create --nqn $NQA --socket "$VFU" --name FwdCtrl2 --admin_identify_cmd_fwd 0x1 \
	--admin_cmd_fwd_socket "$FWD" --admin_cmd_fwd_timeout_ms 10000 | "$JSON_GET" .)
expect_eq "a controller forwarding with a 10 s timeout" "$CB" FwdCtrl2
ra nvme_controller_attach_ns -c FwdCtrl2 -n 1 >/dev/null
rb bdev_nvme_attach_controller --name F7 --trtype vfio-user --traddr "$VFU" >/dev/null 2>&1 &
ATT=$!
_i=0
while ! grep -q "FwdCtrl2" "$T/fwd-silent.out" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done
check "the Identify reached the silent forwarder" grep -q "identify ctrl=FwdCtrl2" "$T/fwd-silent.out"
_t0=$(date +%s%N)
SOCK=$SA
expect_ok "destroy --force while it is forwarded" nvme_controller_destroy -c FwdCtrl2 --force
DMS=$((($(date +%s%N) - _t0) / 1000000))
check "destroy ended it without waiting the 10 s timeout ($DMS ms)" [ "$DMS" -lt 5000 ]
wait $ATT 2>/dev/null
check "A is alive" kill -0 $APID
check "B is alive" kill -0 $BPID
call nvme_controller_list --nqn $NQA
expect_eq "no controller left" "$(jget -c .)" "[]"

# --- forwarding set on an existing controller (nvme_controller_modify)
CM=$(ra nvme_controller_create --nqn $NQA --name FwdMod | "$JSON_GET" .)
expect_eq "a controller without forwarding" "$CM" FwdMod
expect_err "modify: a bad CNS list is refused, naming it" -32602 "admin_identify_cmd_fwd" \
	nvme_controller_modify -c FwdMod --admin_identify_cmd_fwd 0x1x --admin_cmd_fwd_socket "$FWD"
call nvme_controller_list -c FwdMod
expect_eq "the refused modify changed nothing" "$(jget 0.admin_cmd_fwd_socket)" ""
expect_ok "modify: forward Identify CNS 1" nvme_controller_modify -c FwdMod \
	--admin_identify_cmd_fwd 0x1 --admin_cmd_fwd_socket "$FWD" --admin_cmd_fwd_timeout_ms 300
call nvme_controller_list -c FwdMod
expect_eq "list shows the new forwarding" \
	"$(jget 0.admin_identify_cmd_fwd) $(jget 0.admin_cmd_fwd_timeout_ms)" "0x1 300"
expect_ok "modify again: Set Features FID C0h instead" nvme_controller_modify -c FwdMod \
	--admin_set_features_cmd_fwd 0xc0 --admin_cmd_fwd_socket "$FWD"
call nvme_controller_list -c FwdMod
expect_eq "the settings were replaced as a whole" \
	"$(jget 0.admin_identify_cmd_fwd)|$(jget 0.admin_set_features_cmd_fwd)|$(jget 0.admin_cmd_fwd_timeout_ms)" \
	"|0xc0|1000"
expect_ok "destroy it" nvme_controller_destroy -c FwdMod
