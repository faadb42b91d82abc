# SPDX-License-Identifier: MIT
# Host side of vblk-guest.sh (sourced by run-vblk-guest.sh): nvemud serving
# four virtio-blk exports of the default subsystem, configured three ways.
#
#   ns 16  RAM, 64 MiB      VBLK-A  --client on the command line, SN:n16, 2 queues
#   ns 17  file, GPT (sfdisk): partition 2 (8 MiB at sector 8192, UUID P2)
#                           VBLK-B  by partition UUID (from the configuration file)
#   ns 16                   VBLK-C  NQN:n16, read-only (configuration file)
#   ns 18  file, 32 MiB     VBLK-D  bdev Persist, 2 queues (configuration file)
#
# The configuration file is what save_config wrote after the exports were
# created over RPC; nvemud is then restarted with it (-c) and the --client.
# Every chardev reconnects (host_restart restarts nvemud under the guest).
# NVMe/TCP listens on 127.0.0.1 only (host_tcp_write writes through it).
NQN=nqn.2014-08.io.nvemu:default
P2=8e2d4c6b-1a3f-4b5d-9c7e-6f8a0b1c2d3e
SFDISK=$(PATH=$PATH:/sbin:/usr/sbin command -v sfdisk || true)

host_setup() {
	[ -n "$SFDISK" ] || { echo "sfdisk not found (apt-get install fdisk)" >&2; exit 1; }
	PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	truncate -s 32M "$run/gpt.img" "$run/persist.img"
	printf 'label: gpt\nstart=2048, size=4096\nstart=8192, size=16384, uuid=%s\n' "$P2" |
		"$SFDISK" -q "$run/gpt.img" >/dev/null
	# Markers at the partition's first and last sectors.
	printf 'NVEMU-P2-FIRST' | dd of="$run/gpt.img" bs=512 seek=8192 conv=notrunc 2>/dev/null
	printf 'NVEMU-P2-LAST' | dd of="$run/gpt.img" bs=512 seek=$((8192 + 16383)) conv=notrunc 2>/dev/null

	start_nvemud -l "127.0.0.1:$PORT" || { echo "nvemud did not start" >&2; exit 1; }
	SN=$(rpc nvme_subsystem_list --nqn "$NQN" | sed -n 's/.*"serial_number": "\([^"]*\)".*/\1/p')
	rpc bdev_malloc_create -b Big --num_blocks 131072 --block_size 512 >/dev/null
	rpc bdev_file_create -b Gpt --filename "$run/gpt.img" >/dev/null
	rpc bdev_file_create -b Persist --filename "$run/persist.img" >/dev/null
	rpc nvme_namespace_create --nqn "$NQN" -b Big -n 16 >/dev/null
	rpc nvme_namespace_create --nqn "$NQN" -b Gpt -n 17 >/dev/null
	rpc nvme_namespace_create --nqn "$NQN" -b Persist -n 18 >/dev/null
	# The UUID in capitals: partition UUIDs match in any case.
	rpc virtio_blk_controller_create --socket "$run/b.sock" \
		--device "$(echo "$P2" | tr a-f A-F)" --serial VBLK-B >/dev/null
	rpc virtio_blk_controller_create --socket "$run/c.sock" --device "$NQN:n16" \
		--readonly 1 --serial VBLK-C >/dev/null
	rpc virtio_blk_controller_create --socket "$run/d.sock" --bdev Persist --num_queues 2 \
		--serial VBLK-D >/dev/null
	rpc save_config --filename "$run/config.json" >/dev/null
	stop_nvemud
	NVEMUD_ARGS=(-c "$run/config.json" --client "$run/a.sock" --device "$SN:n16"
		--num-queues 2 --serial VBLK-A)
	start_nvemud "${NVEMUD_ARGS[@]}" || { echo "nvemud did not restart" >&2; tail "$run/nvemud.log" >&2; exit 1; }

	QEMU_EXTRA=(-device pcie-root-port,id=rp1,chassis=1,slot=1)
	for x in a:2 b:1 c:1 d:2; do
		QEMU_EXTRA+=(-chardev "socket,id=ch${x%:*},path=$run/${x%:*}.sock,reconnect=1"
			-device "vhost-user-blk-pci,chardev=ch${x%:*},num-queues=${x#*:}")
	done
}

host_tcp_write() { python3 "$here/tcp-write.py" "$PORT" "$NQN" "$@"; }
host_ns_destroy() { rpc nvme_namespace_destroy --nqn "$NQN" -n "$1"; }
host_list() { rpc virtio_blk_controller_list "$@"; }
host_restart() {
	stop_nvemud
	start_nvemud "${NVEMUD_ARGS[@]}"
}
# A fifth export created over RPC, then plugged into the running guest.
host_hotplug_add() {
	rpc virtio_blk_controller_create --ctrl VblkHot --socket "$run/e.sock" --bdev Gpt \
		--serial VBLK-E >/dev/null &&
		hmp "chardev-add socket,id=che,path=$run/e.sock" &&
		hmp "device_add vhost-user-blk-pci,chardev=che,id=vbe,bus=rp1,num-queues=1"
}
host_hotplug_del() { hmp "device_del vbe"; }
host_hotplug_destroy() {
	rpc virtio_blk_controller_destroy --ctrl VblkHot >/dev/null &&
		hmp "chardev-remove che" && ! rpc virtio_blk_controller_list --ctrl VblkHot
}
