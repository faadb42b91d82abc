#!/bin/sh
# SPDX-License-Identifier: MIT
# virtio_blk_controller_* methods: targets by device string (SN:n<NSID>,
# NQN:n<NSID>, GPT partition UUID), bdev and nqn + nsid; each parameter's
# validation naming the field; attach/detach, suspend/resume, destroy; an
# export's namespace destroyed under it; save_config and a restart with -c;
# nvemud's --client option groups and their errors. (The data path is in the
# guest test, tests/vhost-user-blk-guest.)
. "$(dirname "$0")/lib.sh"

NQN=nqn.2014-08.io.nvemu:default
P2=8e2d4c6b-1a3f-4b5d-9c7e-6f8a0b1c2d3e
SFDISK=$(PATH=$PATH:/sbin:/usr/sbin command -v sfdisk)

check "nvemud starts" start_daemon
call nvme_subsystem_list --nqn $NQN
SN=$(jget 0.serial_number)
check "the default subsystem has a serial number" test -n "$SN"
expect_ok "bdev_malloc_create Big" bdev_malloc_create -b Big --num_blocks 8192 --block_size 512
expect_ok "namespace 16 on Big" nvme_namespace_create --nqn $NQN -b Big -n 16
# A subsystem with a known serial number, for --client --device below.
expect_ok "subsystem with serial VBLKSN0001" nvme_subsystem_create --nqn nqn.2024-01.io.nvemu:vblk \
	--serial_number VBLKSN0001
expect_ok "bdev_malloc_create Small" bdev_malloc_create -b Small --num_blocks 2048
expect_ok "its namespace 1" nvme_namespace_create --nqn nqn.2024-01.io.nvemu:vblk -b Small -n 1

# ---- targets
expect_ok "create by SN:n16" virtio_blk_controller_create --socket "$T/a.sock" \
	--device "$SN:n16" --num_queues 2 --ds_max 4 --serial DISK-A
expect_eq "the generated name" "$(jget .)" VblkCtrl1
check "its socket exists" test -S "$T/a.sock"
call virtio_blk_controller_list --ctrl VblkCtrl1
expect_eq "listed attached" "$(jget 0.attached)" true
expect_eq "target: namespace 16" "$(jget 0.target.nsid)" 16
expect_eq "capacity in 512-byte sectors" "$(jget 0.capacity)" 8192
expect_eq "num_queues" "$(jget 0.num_queues)" 2
expect_eq "ds_max" "$(jget 0.ds_max)" 4
expect_eq "serial" "$(jget 0.serial)" DISK-A
expect_eq "the device string as given" "$(jget 0.device)" "$SN:n16"
expect_ok "create by NQN:n16, read-only, named" virtio_blk_controller_create --ctrl Ro \
	--socket "$T/ro.sock" --device "$NQN:n16" --readonly
call virtio_blk_controller_list --ctrl Ro
expect_eq "read-only" "$(jget 0.readonly)" true
expect_eq "the serial defaults to the name" "$(jget 0.serial)" Ro
expect_ok "create by bdev" virtio_blk_controller_create --socket "$T/b.sock" --bdev Big
expect_eq "the next generated name" "$(jget .)" VblkCtrl2
expect_ok "create by nqn + nsid" virtio_blk_controller_create --socket "$T/n.sock" \
	--nqn $NQN --nsid 16
expect_ok "create detached (no target)" virtio_blk_controller_create --ctrl Det --socket "$T/d.sock"
call virtio_blk_controller_list --ctrl Det
expect_eq "detached: not attached" "$(jget 0.attached)" false

# ---- GPT partition by UUID (sfdisk)
truncate -s 16M "$T/gpt.img"
printf 'label: gpt\nstart=2048, size=2048\nstart=4096, size=8192, uuid=%s\n' $P2 |
	"$SFDISK" -q "$T/gpt.img" >/dev/null
check "sfdisk wrote a GPT" test $? -eq 0
expect_ok "bdev on the partitioned file" bdev_file_create -b Gpt --filename "$T/gpt.img"
expect_ok "namespace 17 on it" nvme_namespace_create --nqn $NQN -b Gpt -n 17
expect_ok "create by partition UUID (capitals)" virtio_blk_controller_create --ctrl Part \
	--socket "$T/p.sock" --device "$(echo $P2 | tr a-f A-F)"
call virtio_blk_controller_list --ctrl Part
expect_eq "partition: namespace 17" "$(jget 0.target.nsid)" 17
expect_eq "partition: first LBA" "$(jget 0.target.first_lba)" 4096
expect_eq "partition: its blocks" "$(jget 0.target.num_blocks)" 8192
expect_eq "partition: capacity" "$(jget 0.capacity)" 8192

# ---- bad input names the field
S="--socket $T/x.sock"
expect_err "socket missing" -32602 "socket" virtio_blk_controller_create --device "$SN:n16"
expect_err "relative socket" -32602 "socket: must be an absolute path" \
	virtio_blk_controller_create --socket rel.sock
expect_err "a socket already served" -32001 "socket: .* is served by VblkCtrl1" \
	virtio_blk_controller_create --socket "$T/a.sock"
expect_err "a name already used" -32001 "ctrl: Ro already exists" \
	virtio_blk_controller_create --ctrl Ro $S
expect_err "malformed device" -32602 "device: .*expected SN:n<NSID>" \
	virtio_blk_controller_create $S --device nonsense
expect_err "NSID 0" -32602 "device" virtio_blk_controller_create $S --device "$SN:n0"
expect_err "unknown serial number" -32000 "device: .*no subsystem" \
	virtio_blk_controller_create $S --device "NOSUCHSERIAL:n1"
expect_err "unknown namespace" -32000 "device: .*no namespace 99" \
	virtio_blk_controller_create $S --device "$SN:n99"
expect_err "unknown partition UUID" -32000 "device: no GPT partition" \
	virtio_blk_controller_create $S --device 11111111-2222-4333-8444-555555555555
expect_err "unknown bdev" -32000 "bdev: no bdev" virtio_blk_controller_create $S --bdev Nope
expect_ok "a bdev with no namespace" bdev_malloc_create -b Loose --num_blocks 64
expect_err "a bdev under no namespace" -32000 "bdev: bdev Loose backs no namespace" \
	virtio_blk_controller_create $S --bdev Loose
expect_err "nqn without nsid" -32602 "nqn: needs nsid" virtio_blk_controller_create $S --nqn $NQN
expect_err "two targets" -32602 "device: give one of" \
	virtio_blk_controller_create $S --device "$SN:n16" --bdev Big
expect_err "num_queues 0" -32602 "num_queues" virtio_blk_controller_create $S --num_queues 0
expect_err "num_queues 65" -32602 "num_queues" virtio_blk_controller_create $S --num_queues 65
expect_err "queue_size 2000" -32602 "queue_size" virtio_blk_controller_create $S --queue_size 2000
expect_err "queue_size not a power of 2" -32602 "queue_size" \
	virtio_blk_controller_create $S --queue_size 100
expect_err "ds_max 33" -32602 "ds_max" virtio_blk_controller_create $S --ds_max 33
expect_err "serial of 21 characters" -32602 "serial" \
	virtio_blk_controller_create $S --serial 123456789012345678901
expect_err "register_ds missing" -32602 "register_ds" \
	virtio_blk_controller_create $S --register_ds "$T/nofile"
check "nothing was left behind by the failures" test ! -e "$T/x.sock"
expect_err "destroy: unknown name" -32000 "ctrl: no virtio-blk controller" \
	virtio_blk_controller_destroy --ctrl Nope
expect_err "attach without a target" -32602 "device" virtio_blk_controller_bdev_attach --ctrl Det

# ---- attach, detach, suspend, resume
expect_ok "attach the detached one" virtio_blk_controller_bdev_attach --ctrl Det --device "$SN:n16"
call virtio_blk_controller_list --ctrl Det
expect_eq "now attached" "$(jget 0.attached)" true
expect_err "attach twice" -32002 "" virtio_blk_controller_bdev_attach --ctrl Det --bdev Big
expect_ok "detach" virtio_blk_controller_bdev_detach --ctrl Det
call virtio_blk_controller_list --ctrl Det
expect_eq "detached again" "$(jget 0.attached)" false
expect_err "detach twice" -32003 "no bdev attached" virtio_blk_controller_bdev_detach --ctrl Det
expect_ok "suspend" virtio_blk_controller_suspend --ctrl VblkCtrl2
call virtio_blk_controller_list --ctrl VblkCtrl2
expect_eq "listed suspended" "$(jget 0.suspended)" true

# ---- save_config keeps them; a restart with -c brings them back
expect_ok "save_config" save_config --filename "$T/config.json"
check "the configuration has the exports" grep -q virtio_blk_controller_create "$T/config.json"
call virtio_blk_controller_list
before=$(printf '%s' "$OUT" | sed 's/"\(connects\|inflight\)": [0-9]*//g' | "$JSON_GET" -c)
names=$(jget -l .)
expect_eq "six exports" "$names" 6
stop_daemon
expect_eq "nvemud stops (exit 0)" "$DRC" 0
check "its sockets are gone" test ! -e "$T/a.sock"
check "nvemud restarts with the configuration" start_daemon -c "$T/config.json"
call virtio_blk_controller_list
after=$(printf '%s' "$OUT" | sed 's/"\(connects\|inflight\)": [0-9]*//g' | "$JSON_GET" -c)
expect_eq "the same exports after the restart" "$after" "$before"
expect_ok "a new one gets the next free name" virtio_blk_controller_create --socket "$T/z.sock"
expect_eq "VblkCtrl4" "$(jget .)" VblkCtrl4

# ---- namespace destroyed under its exports: they are detached, the namespace goes
expect_ok "destroy namespace 17 under its export" nvme_namespace_destroy --nqn $NQN -n 17
call virtio_blk_controller_list --ctrl Part
expect_eq "its export is detached" "$(jget 0.attached)" false
call nvme_namespace_list --nqn $NQN
check "namespace 17 is gone" not jhas nsid=17
expect_ok "an export on the second subsystem" virtio_blk_controller_create --ctrl OnSub \
	--socket "$T/s.sock" --device VBLKSN0001:n1
expect_ok "destroy that subsystem (force) under its export" nvme_subsystem_destroy \
	--nqn nqn.2024-01.io.nvemu:vblk --force
call virtio_blk_controller_list --ctrl OnSub
expect_eq "its export is detached" "$(jget 0.attached)" false
expect_ok "and can be destroyed" virtio_blk_controller_destroy --ctrl OnSub
expect_ok "destroy an export" virtio_blk_controller_destroy --ctrl VblkCtrl1
check "its socket is removed" test ! -e "$T/a.sock"
expect_err "no longer listed" -32000 "no virtio-blk controller" virtio_blk_controller_list --ctrl VblkCtrl1
check "the daemon is alive" daemon_alive
stop_daemon

# ---- --client option groups on the command line
check "nvemud with a configuration and two --client groups starts" start_daemon \
	-c "$T/config.json" --client "$T/c1.sock" --device VBLKSN0001:n1 --ds-max 4 --readonly \
	--serial C1 --client "$T/c2.sock" --device "$NQN:n16" --num-queues 2 --queue-size 128
call virtio_blk_controller_list
expect_eq "the configuration's six exports and the two clients" "$(jget -l .)" 8
i=$(jget -f "socket=$T/c1.sock" .)
expect_eq "first: read-only" "$(jget $i.readonly)" true
expect_eq "first: ds_max 4" "$(jget $i.ds_max)" 4
expect_eq "first: serial" "$(jget $i.serial)" C1
expect_eq "first: by serial number: namespace 1 of the subsystem" "$(jget $i.target.nqn)/$(jget $i.target.nsid)" \
	nqn.2024-01.io.nvemu:vblk/1
i=$(jget -f "socket=$T/c2.sock" .)
expect_eq "second: not read-only" "$(jget $i.readonly)" false
expect_eq "second: two queues" "$(jget $i.num_queues)" 2
expect_eq "second: queue size" "$(jget $i.queue_size)" 128
stop_daemon
for bad in "--device $SN:n1|--device: must follow a --client" \
	"--client $T/q.sock --ds-max 99|--ds-max: must be an integer in 1..32" \
	"--client $T/q.sock --readonly --readonly|--readonly: given twice" \
	"--client $T/q.sock --num-queues x|--num-queues: must be an integer"; do
	"$NVEMUD" -r "$SOCK" -l none -m none ${bad%|*} >"$T/o" 2>&1
	rc=$?
	check "usage error (exit 2) naming the option: ${bad%|*}" \
		sh -c '[ "$1" = 2 ] && grep -q -- "$2" "$3"' - $rc "${bad#*|}" "$T/o"
done
"$NVEMUD" -r "$SOCK" -l none -m none --client "$T/q.sock" --device "NOSUCH:n1" >"$T/o" 2>&1
rc=$?
check "an unknown device fails the start (exit 1), naming --device" \
	sh -c '[ "$1" = 1 ] && grep -q -- "--client .*q.sock: --device: .*no subsystem" "$2"' - $rc "$T/o"
"$NVEMUD" -r "$SOCK" -l none -m none --client rel.sock >"$T/o" 2>&1
rc=$?
check "a relative socket fails the start, naming --client" \
	sh -c '[ "$1" = 1 ] && grep -q -- "--client rel.sock: --client: must be an absolute path" "$2"' - $rc "$T/o"
