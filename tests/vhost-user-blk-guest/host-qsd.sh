# SPDX-License-Identifier: MIT
# Host side for run-vblk-guest.sh: qemu-storage-daemon's vhost-user-blk export
# of a 64 MiB raw image on tmpfs, two queues (the harness's own check that a
# guest sees a vhost-user-blk disk, independent of nvemu).
host_setup() {
	command -v qemu-storage-daemon >/dev/null || { echo "qemu-storage-daemon not found (qemu-system-x86)" >&2; exit 1; }
	truncate -s 64M "$run/qsd.img"
	qemu-storage-daemon --blockdev driver=file,filename="$run/qsd.img",node-name=f0 \
		--export type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path="$run/qsd.sock",writable=on,num-queues=2 \
		> "$run/qsd.log" 2>&1 &
	HOST_PIDS+=($!)
	for _ in $(seq 100); do [ -S "$run/qsd.sock" ] && break; sleep 0.05; done
	QEMU_EXTRA=(-chardev "socket,id=qsd,path=$run/qsd.sock"
		-device "vhost-user-blk-pci,chardev=qsd,num-queues=2")
}
