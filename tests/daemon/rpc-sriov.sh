#!/bin/sh
# SPDX-License-Identifier: MIT
# PCIe functions and SR-IOV through nvemu-rpc: the SNAP seed's sequences
# (seed 004) verbatim with --pf_id, VF controllers as secondaries of the PF's,
# SNAP's MSI-X pool (dynamic_msix, vf_num_msix, num_msix, release_msix,
# vfs_msix_reclaim), queue_core_alloc_policy / core_id, modify without ctrl,
# hot-unplug (detach_prepare / detach), save_config and nvemud -c.
. "$(dirname "$0")/lib.sh"

NQN=nqn.2022-10.io.nvda.nvme:0
UUID=263826ad-19a3-4feb-bc25-4bc81ee7749e
snap_rpc() { rpc "$@" >/dev/null; }

# An empty configuration: the seed's controller is NVMeCtrl1, as in SNAP.
printf '{"nvemu_config": 1, "calls": []}\n' >"$T/empty.json"
check "nvemud starts with an empty configuration" start_daemon -c "$T/empty.json"

call emulation_function_list
expect_eq "one PF by default, next to the RPC socket" \
	"$(jget -l .) $(jget 0.pf_index) $(jget 0.socket)" "1 0 $T/nvemu-pf0.sock"
expect_ok "emulation_functions_configure --num_vfs 2" emulation_functions_configure --num_vfs 2
call emulation_function_list
expect_eq "PF 0 lists two VFs with BDFs from the VF routing offset" \
	"$(jget 0.num_vfs) $(jget 0.pci_bdf) $(jget 0.vfs.0.pci_bdf) $(jget 0.vfs.1.pci_bdf)" \
	"2 01:00.0 01:00.1 01:00.2"
PF_VUID=$(jget 0.vuid)
VF_VUID=$(jget 0.vfs.0.vuid)
VF_BDF=$(jget 0.vfs.0.pci_bdf)
check "VUIDs are distinct strings" [ -n "$PF_VUID" ] && [ "$PF_VUID" != "$VF_VUID" ]

# --- the seed's bring-up, verbatim but for the tool's name
rpc bdev_malloc_create -b nvme0n1 --num_blocks 8192 --block_size 512 >/dev/null
check "seed: nvme_subsystem_create" snap_rpc nvme_subsystem_create --nqn nqn.2022-10.io.nvda.nvme:0
check "seed: nvme_namespace_create" snap_rpc nvme_namespace_create -b nvme0n1 -n 1 --nqn nqn.2022-10.io.nvda.nvme:0 --uuid 263826ad-19a3-4feb-bc25-4bc81ee7749e
check "seed: nvme_controller_create --pf_id 0 --suspended" snap_rpc nvme_controller_create --nqn nqn.2022-10.io.nvda.nvme:0 --pf_id 0 --suspended
check "seed: nvme_controller_attach_ns" snap_rpc nvme_controller_attach_ns -c NVMeCtrl1 -n 1
check "seed: nvme_controller_resume" snap_rpc nvme_controller_resume -c NVMeCtrl1
call nvme_controller_list -c NVMeCtrl1
expect_eq "NVMeCtrl1 is on PF 0, served on its socket" \
	"$(jget 0.pf_id) $(jget 0.vuid) $(jget 0.socket) $(jget 0.namespaces)" \
	"0 $PF_VUID $T/nvemu-pf0.sock [1]"
expect_eq "queue_core_alloc_policy defaults to on-demand" "$(jget 0.queue_core_alloc_policy)" on-demand
call emulation_function_list
expect_eq "emulation_function_list shows the controller on PF 0" "$(jget 0.ctrl_id)" NVMeCtrl1
check "the PF's socket exists" [ -S "$T/nvemu-pf0.sock" ]
expect_err "a second controller on PF 0 is refused" -32001 "already has controller NVMeCtrl1" \
	nvme_controller_create --nqn $NQN --pf_id 0
expect_err "pf_id out of range" -32000 "pf_id: no PF 3" nvme_controller_create --nqn $NQN --pf_id 3
expect_err "vf_id out of range" -32000 "vf_id" nvme_controller_create --nqn $NQN --pf_id 0 --vf_id 2
expect_err "vf_id without pf_id" -32602 "vf_id: needs pf_id" nvme_controller_create --nqn $NQN --vf_id 0
expect_err "socket with a function" -32602 "socket" \
	nvme_controller_create --nqn $NQN --pf_id 0 --vf_id 0 --socket "$T/x.sock"
expect_err "selectors naming different functions" -32602 "pci_bdf" \
	nvme_controller_create --nqn $NQN --pf_id 0 --pci_bdf "$VF_BDF"
expect_err "vf_num_msix needs a PF created with dynamic_msix" -32602 "dynamic_msix" \
	nvme_controller_create --nqn $NQN --pf_id 0 --vf_id 0 --vf_num_msix 2
expect_err "bad queue_core_alloc_policy" -32602 "queue_core_alloc_policy" \
	nvme_controller_create --nqn $NQN --pf_id 0 --vf_id 0 --queue_core_alloc_policy spread

# --- re-create the PF's controller with dynamic_msix; VFs as secondaries
expect_ok "destroy NVMeCtrl1" nvme_controller_destroy -c NVMeCtrl1
expect_err "a VF's controller needs the PF's first" -32003 "PF 0 has no controller" \
	nvme_controller_create --nqn $NQN --pf_id 0 --vf_id 0
expect_ok "PF controller with dynamic_msix" nvme_controller_create --nqn $NQN --vuid "$PF_VUID" \
	--dynamic_msix --queue_core_alloc_policy pre-allocation
PF=$(printf '%s' "$OUT" | "$JSON_GET" .)
expect_ok "VF 0 controller by BDF with vf_num_msix 3" nvme_controller_create --nqn $NQN \
	--pci_bdf "$VF_BDF" --vf_num_msix 3 --num_queues 4
VF=$(printf '%s' "$OUT" | "$JSON_GET" .)
call nvme_controller_list -c "$VF"
expect_eq "VF controller: pf_id/vf_id, num_msix 3, offline" \
	"$(jget 0.pf_id) $(jget 0.vf_id) $(jget 0.vuid) $(jget 0.num_msix) $(jget 0.online)" \
	"0 0 $VF_VUID 3 false"
expect_err "vf_num_msix beyond the per-VF maximum" -32004 "vf_num_msix" \
	nvme_controller_create --nqn $NQN --pf_id 0 --vf_id 1 --vf_num_msix 33
expect_ok "modify without ctrl: num_msix by vuid" nvme_controller_modify --vuid "$VF_VUID" --num_msix 5
call nvme_controller_list -c "$VF"
expect_eq "num_msix follows" "$(jget 0.num_msix)" 5
expect_ok "modify without ctrl: num_queues of an idle vfio-user controller" \
	nvme_controller_modify --pf_id 0 --vf_id 0 --num_queues 6
call nvme_controller_list -c "$VF"
expect_eq "num_queues changed, still on its socket and a secondary" \
	"$(jget 0.num_queues) $(jget 0.socket) $(jget 0.num_msix)" "6 $T/nvemu-pf0-vf0.sock 5"
expect_err "num_msix on a PF" -32602 "num_msix: only for a VF" \
	nvme_controller_modify -c "$PF" --num_msix 2
expect_err "modify without ctrl or function" -32602 "ctrl" nvme_controller_modify --num_queues 2
call nvme_controller_iostat -c "$PF"
check "iostat answers (core_id per queue)" [ "$RC" -eq 0 ]
expect_err "the PF goes after its VFs" -32002 "destroy the VFs' controllers first" \
	nvme_controller_destroy -c "$PF"
expect_ok "vfs_msix_reclaim (every VF offline)" nvme_controller_vfs_msix_reclaim -c "$PF"
call nvme_controller_list -c "$VF"
expect_eq "the VF's MSI-X went back to the pool" "$(jget 0.num_msix)" 0
expect_err "vfs_msix_reclaim on a VF" -32602 "not the controller of a PF" \
	nvme_controller_vfs_msix_reclaim -c "$VF"
expect_ok "num_msix again" nvme_controller_modify -c "$VF" --num_msix 2

# --- save_config / nvemud -c
call save_config -f "$T/saved.json"
check "save_config writes the functions first" \
	grep -q '"emulation_functions_configure"' "$T/saved.json"
check "save_config keeps pf_id/vf_id, dynamic_msix, vf_num_msix and the policy" \
	sh -c 'grep -q "\"vf_id\"" "$1" && grep -q "\"dynamic_msix\"" "$1" && grep -q "\"vf_num_msix\": 2" "$1" && grep -q pre-allocation "$1"' - "$T/saved.json"
stop_daemon
check "nvemud -c restores the functions and controllers" start_daemon -c "$T/saved.json"
call nvme_controller_list -c "$VF"
expect_eq "restored VF controller: function, num_msix, num_queues" \
	"$(jget 0.vuid) $(jget 0.num_msix) $(jget 0.num_queues)" "$VF_VUID 2 6"
call nvme_controller_list -c "$PF"
expect_eq "restored PF controller: dynamic_msix, policy" \
	"$(jget 0.dynamic_msix) $(jget 0.queue_core_alloc_policy)" "true pre-allocation"

# --- the seed's hot-unplug sequence on the VF
expect_err "configure is refused while controllers are open" -32002 "destroy it first" \
	emulation_functions_configure --num_vfs 1
expect_ok "release_msix with the destroy" nvme_controller_destroy -c "$VF" --release_msix
call emulation_function_list
expect_eq "the VF is free again" "$(jget 0.vfs.0.ctrl_id)" null
expect_ok "VF controller again" nvme_controller_create --nqn $NQN --pf_id 0 --vf_id 0 --suspended
VF=$(printf '%s' "$OUT" | "$JSON_GET" .)
call nvme_controller_list -c "$VF"
expect_eq "released: no MSI-X" "$(jget 0.num_msix)" 0
check "seed: nvme_controller_attach_ns" snap_rpc nvme_controller_attach_ns -c "$VF" -n 1
check "seed: nvme_controller_detach_ns" snap_rpc nvme_controller_detach_ns -c "$VF" -n 1
check "seed: emulation_device_detach_prepare" snap_rpc emulation_device_detach_prepare --vuid "$VF_VUID"
expect_err "no new controller on a function being detached" -32003 "being detached" \
	nvme_controller_create --nqn $NQN --pf_id 0 --vf_id 0
expect_err "detach before the controller is destroyed" -32002 "destroy it first" \
	emulation_device_detach --vuid "$VF_VUID"
check "seed: nvme_controller_destroy" snap_rpc nvme_controller_destroy -c "$VF"
check "seed: emulation_device_detach" snap_rpc emulation_device_detach --vuid "$VF_VUID"
check "the VF's socket is gone" not [ -e "$T/nvemu-pf0-vf0.sock" ]
call emulation_function_list
expect_eq "listed as detached" "$(jget 0.vfs.0.state)" detached
expect_err "unknown vuid" -32000 "vuid" emulation_device_detach_prepare --vuid NOPE
check "seed: nvme_controller_destroy PF" snap_rpc nvme_controller_destroy -c "$PF"
check "seed: nvme_namespace_destroy" snap_rpc nvme_namespace_destroy -n 1 --nqn nqn.2022-10.io.nvda.nvme:0
check "seed: nvme_subsystem_destroy" snap_rpc nvme_subsystem_destroy --nqn nqn.2022-10.io.nvda.nvme:0
expect_ok "reconfiguring brings detached functions back" emulation_functions_configure --num_vfs 1
call emulation_function_list
expect_eq "one VF, present" "$(jget 0.num_vfs) $(jget 0.vfs.0.state)" "1 present"

# --- a subsystem destroyed with its PF and VF controllers open
rpc bdev_malloc_create -b forced --num_blocks 1024 >/dev/null
rpc nvme_subsystem_create --nqn $NQN >/dev/null
rpc nvme_namespace_create -b forced -n 1 --nqn $NQN >/dev/null
rpc nvme_controller_create --nqn $NQN --pf_id 0 --dynamic_msix >/dev/null
expect_ok "a VF controller under it" nvme_controller_create --nqn $NQN --pf_id 0 --vf_id 0 --vf_num_msix 2
expect_ok "nvme_subsystem_destroy --force takes both" nvme_subsystem_destroy --nqn $NQN --force
call emulation_function_list
expect_eq "both functions are free again" "$(jget 0.ctrl_id) $(jget 0.vfs.0.ctrl_id)" "null null"
rpc nvme_subsystem_create --nqn $NQN >/dev/null
expect_ok "the PF takes a new controller" nvme_controller_create --nqn $NQN --pf_id 0
check "nvemud still running" daemon_alive

# --- nvemud --num-pfs / --num-vfs
stop_daemon
check "nvemud --num-pfs 2 --num-vfs 3" start_daemon --num-pfs 2 --num-vfs 3
call emulation_function_list
expect_eq "two PFs with three VFs each; PF 1's VF 2 on its own socket" \
	"$(jget -l .) $(jget 1.num_vfs) $(jget 1.vfs.2.socket) $(jget 1.vfs.2.pci_bdf)" \
	"2 3 $T/nvemu-pf1-vf2.sock 02:00.3"
stop_daemon
check "nvemud --num-vfs 200 is refused" not "$NVEMUD" -r "$T/x.sock" --num-vfs 200
