# SPDX-License-Identifier: MIT
# Host side of bench/vblk-vs-qsd.sh (sourced by
# tests/vhost-user-blk-guest/run-vblk-guest.sh): two vhost-user-blk disks of
# 64 MiB in RAM with two queues each, nvemud's export of a RAM namespace
# (serial NVEMUVBLK) and qemu-storage-daemon's export of a raw image on
# tmpfs (serial: none).
host_setup() {
	command -v qemu-storage-daemon >/dev/null || { echo "qemu-storage-daemon not found" >&2; exit 1; }
	start_nvemud -l none || { echo "nvemud did not start" >&2; exit 1; }
	rpc bdev_malloc_create -b VblkBench --num_blocks 131072 --block_size 512 >/dev/null
	rpc nvme_namespace_create --nqn nqn.2014-08.io.nvemu:default -b VblkBench -n 16 >/dev/null
	rpc virtio_blk_controller_create --socket "$run/nvemu.sock" --bdev VblkBench \
		--num_queues 2 --serial NVEMUVBLK >/dev/null
	shm=/dev/shm
	[ -d "$shm" ] && [ -w "$shm" ] || shm=$run
	img=$(mktemp "$shm/nvemu-vblk-bench.XXXXXX")
	truncate -s 64M "$img"
	qemu-storage-daemon --blockdev driver=file,filename="$img",node-name=f0,cache.direct=off \
		--export type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path="$run/qsd.sock",writable=on,num-queues=2 \
		> "$run/qsd.log" 2>&1 &
	HOST_PIDS+=($!)
	for _ in $(seq 100); do [ -S "$run/qsd.sock" ] && break; sleep 0.05; done
	rm -f "$img" # qemu-storage-daemon holds it open
	QEMU_EXTRA=(-chardev "socket,id=nv,path=$run/nvemu.sock"
		-device "vhost-user-blk-pci,chardev=nv,num-queues=2"
		-chardev "socket,id=qsd,path=$run/qsd.sock"
		-device "vhost-user-blk-pci,chardev=qsd,num-queues=2")
}
