#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Boot a guest whose NVMe controller is nvemu's, over vfio-user, and run a
# script in it:
#
#   tests/vfio-user/run-vfu-guest.sh BUILD_DIR SCRIPT [BOOTS]
#
# - QEMU >= 10.1 (vfio-user-pci) comes from a Debian trixie chroot that
#   setup-trixie.sh builds once (cached in $NVEMU_CHROOT_CACHE, default
#   /var/tmp/nvemu-trixie); it runs through the chroot's own dynamic loader.
# - The guest image and the run itself are tests/guest/run-guest.sh's (kernel,
#   busybox, nvme-cli, fio; serial-port status with a random tag). A
#   qemu-system-x86_64 shim first in PATH adds what vfio-user needs: guest RAM
#   in a shared memfd, the vfio-user-pci device, and an extra initramfs
#   archive with the nvme PCI driver modules (/vfu/modules.order).
# - nvemud (BUILD_DIR/src/daemon) serves its default configuration's
#   NVMeCtrl1 on a socket, plus a 64 MiB RAM namespace added over RPC; it
#   runs for all BOOTS boots (default 2), so the second guest is a
#   reconnection that must find the first one's data. With
#   NVEMU_VFU_STANDALONE=1, tests/vfio-user/vfu-test-server serves instead
#   (no RPC: the guest skips its RPC checks).
# - RPC from the guest: the guest cannot reach the RPC socket, so a fourth
#   serial port (ttyS3) is a pipe to a watcher here. The guest writes
#   "@@RPC METHOD ARGS..." and reads back "RC <status> <output without
#   blanks>"; the watcher runs nvemu-rpc against the private nvemud
#   (@RUN@ in an argument is replaced with a private host directory).
# - NVEMU_VFU_SRIOV=1 (tests/vfio-user/sriov-guest.sh): nvemud serves PCIe
#   functions instead (one PF, one VF): the SNAP seed's sequence opens the
#   PF's controller with --pf_id 0 and a 64 MiB RAM namespace, a second
#   controller on VF 0 gets a 32 MiB namespace of its own; QEMU has both
#   functions as two vfio-user-pci devices (the PF first).
# - NVEMU_VFU_NS_FILE=1: the 64 MiB namespace is a file bdev (its data
#   survives a live update, a RAM bdev's does not); the guest may then ask
#   for one with "@@LIVEUPDATE": the watcher starts a new nvemud with
#   --take-over, suspends NVMeCtrl1 with live_update_notifier, hands over
#   (nvemud_live_update), waits for the old one to exit and resumes the
#   controller in the new one; it answers "RC <status> <message>".
# - NVEMU_VFU_FWD_EXAMPLE: the admin command forwarder example
#   (examples/admin-fwd-example.c), started on @RUN@/fwd.sock with the model
#   number "forwarded by example" for the guest to turn forwarding on.
# - NVEMU_VFU_SETUP: a program run once nvemud is up, as
#   PROGRAM NVEMU_RPC RPC_SOCKET, to add what the script needs (e.g. an RBD
#   namespace, tests/ceph/rbd-vfu.sh); its failure fails the run.
# - NVEMU_VFU_QEMU_EXTRA: more QEMU arguments (blank-separated words), e.g.
#   QEMU's own -device nvme for bench/vfio-user-vs-qemu-nvme.sh.
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 BUILD_DIR SCRIPT [BOOTS]" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
script=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
boots=${3:-2}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
cache=${NVEMU_VFU_CACHE:-$build/vfu-cache}
serial=${NVEMU_VFU_SERIAL:-NVEMU-VFU-GUEST1}
mkdir -p "$cache"

skip() { echo "1..1"; echo "not ok 1 - $* (a missing tool fails, never skips)"; exit 1; }

for tool in cpio depmod modprobe apt-get dpkg xz; do
	command -v "$tool" >/dev/null 2>&1 || skip "$tool not found"
done
chroot_dir=$("$here/setup-trixie.sh") || skip "no trixie chroot with QEMU >= 10.1 (setup-trixie.sh failed)"
standalone=${NVEMU_VFU_STANDALONE:-}
if [ -n "$standalone" ]; then
	server=$build/tests/vfio-user/vfu-test-server
else
	server=$build/src/daemon/nvemud
fi
rpc_cli=$build/src/rpc-cli/nvemu-rpc
[ -x "$server" ] || { echo "run-vfu-guest: $server not built" >&2; exit 1; }

# The nvme PCI driver for the kernel run-guest.sh boots (its base image has
# only the TCP host modules).
kmod_cpio=$cache/nvme-pci.cpio.gz
if [ ! -s "$kmod_cpio" ]; then
	kpkg=$(apt-cache depends linux-image-amd64 |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n 1)
	[ -n "$kpkg" ] || { echo "run-vfu-guest: no kernel package" >&2; exit 1; }
	kver=${kpkg#linux-image-}
	work=$cache/kwork
	rm -rf "$work"
	mkdir -p "$work/dl" "$work/ext" "$work/root/vfu"
	(cd "$work/dl" && apt-get download "$kpkg" >&2)
	dpkg -x "$work"/dl/*.deb "$work/ext"
	depmod -b "$work/ext" "$kver"
	: > "$work/root/vfu/modules.order"
	modprobe -d "$work/ext" -S "$kver" --show-depends nvme |
		awk '$1 == "insmod" { print $2 }' |
		while read -r ko; do
			rel=${ko#"$work/ext"}
			dst=/vfu/ko/$(basename "${rel%.xz}")
			mkdir -p "$work/root/vfu/ko"
			case $rel in
			*.xz) xz -dc "$ko" > "$work/root$dst" ;;
			*) cp "$ko" "$work/root$dst" ;;
			esac
			echo "$dst" >> "$work/root/vfu/modules.order"
		done
	grep -q '/nvme.ko$' "$work/root/vfu/modules.order" ||
		{ echo "run-vfu-guest: nvme.ko not found in $kpkg" >&2; exit 1; }
	(cd "$work/root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$kmod_cpio.tmp"
	mv "$kmod_cpio.tmp" "$kmod_cpio"
	rm -rf "$work"
fi

run=$(mktemp -d "${TMPDIR:-/tmp}/nvemu-vfu.XXXXXX")
srv_pid=
watch_pid=
fwd_pid=
cleanup() {
	if [ -n "$fwd_pid" ]; then
		kill "$fwd_pid" 2>/dev/null || true
		wait "$fwd_pid" 2>/dev/null || true
	fi
	if [ -n "$watch_pid" ]; then
		kill "$watch_pid" 2>/dev/null || true
		wait "$watch_pid" 2>/dev/null || true
	fi
	[ -s "$run/srv.pid" ] && srv_pid=$(cat "$run/srv.pid")
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null || true
		wait "$srv_pid" 2>/dev/null || true
	fi
	rm -rf "$run"
}
trap cleanup EXIT

sock=$run/vfu.sock
vf_dev=
# A PCI vendor ID of ffff (the placeholder identity of builds without
# NVEMU_PCI_*) means "no device" to PCI enumeration: the guest would never
# see the function. Tests use a test-only identity unless one is set.
export NVEMU_PCI_VID=${NVEMU_PCI_VID:-0x1234} NVEMU_PCI_DID=${NVEMU_PCI_DID:-0x0e4e}
export NVEMU_PCI_SVID=${NVEMU_PCI_SVID:-0x1234} NVEMU_PCI_SDID=${NVEMU_PCI_SDID:-0x0001}
rpcsock=$run/rpc.sock
rpc() { "$rpc_cli" -s "$rpcsock" -t 20 "$@"; }
if [ -n "$standalone" ]; then
	"$server" ${NVEMU_VFU_VERBOSE:+-v} -S "$serial" -m 64 "$sock" > "$run/server.out" 2> "$run/server.err" &
	srv_pid=$!
	for _ in $(seq 100); do
		grep -q '^ready' "$run/server.out" 2>/dev/null && break
		sleep 0.05
	done
	grep -q '^ready' "$run/server.out" || { cat "$run/server.err" >&2; exit 1; }
else
	# --poll-us: nvemud offers the doorbell pages for mmap only when it busy-polls
	vfu_opt=$sock
	[ -z "${NVEMU_VFU_SRIOV:-}" ] || vfu_opt=none
	"$server" -r "$rpcsock" -l none -m none -u "$vfu_opt" --poll-us 200 ${NVEMU_VFU_VERBOSE:+-vv} \
		> "$run/server.out" 2> "$run/server.err" &
	srv_pid=$!
	if [ -n "${NVEMU_VFU_SRIOV:-}" ]; then
		for _ in $(seq 100); do
			rpc rpc_get_methods >/dev/null 2>&1 && break
			sleep 0.05
		done
		# The SNAP seed's sequence on PF 0, then a secondary controller on VF 0.
		set -x
		rpc emulation_functions_configure --num_vfs 1 >/dev/null
		rpc bdev_malloc_create -b nvme0n1 --num_blocks 131072 --block_size 512 >/dev/null
		# nn: SeaBIOS identifies every NSID up to NN at boot (README, PCIe over vfio-user).
		rpc nvme_subsystem_create --nqn nqn.2022-10.io.nvda.nvme:0 --nn 32 >/dev/null
		rpc nvme_namespace_create -b nvme0n1 -n 1 --nqn nqn.2022-10.io.nvda.nvme:0 --uuid 263826ad-19a3-4feb-bc25-4bc81ee7749e >/dev/null
		rpc nvme_controller_create --nqn nqn.2022-10.io.nvda.nvme:0 --pf_id 0 --suspended --dynamic_msix >/dev/null
		rpc nvme_controller_attach_ns -c NVMeCtrl2 -n 1 >/dev/null
		rpc nvme_controller_resume -c NVMeCtrl2 >/dev/null
		rpc bdev_malloc_create -b VfDisk --num_blocks 65536 --block_size 512 >/dev/null
		rpc nvme_namespace_create -b VfDisk -n 2 --nqn nqn.2022-10.io.nvda.nvme:0 >/dev/null
		rpc nvme_controller_create --nqn nqn.2022-10.io.nvda.nvme:0 --pf_id 0 --vf_id 0 --num_queues 2 >/dev/null
		rpc nvme_controller_attach_ns -c NVMeCtrl3 -n 2 >/dev/null
		set +x
		sock=$run/nvemu-pf0.sock
		vf_dev="{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"$run/nvemu-pf0-vf0.sock\"}}"
	fi
	for _ in $(seq 100); do
		[ -S "$sock" ] && rpc rpc_get_methods >/dev/null 2>&1 && break
		sleep 0.05
	done
	[ -S "$sock" ] || { cat "$run/server.err" >&2; exit 1; }
	if [ -z "${NVEMU_VFU_SRIOV:-}" ]; then
		# The fio namespace: 64 MiB, attached to the served controller.
		if [ -n "${NVEMU_VFU_NS_FILE:-}" ]; then
			truncate -s 64M "$run/ns.img"
			rpc bdev_file_create -b VfuBig --filename "$run/ns.img" --block_size 512 >/dev/null
		else
			rpc bdev_malloc_create -b VfuBig --num_blocks 131072 --block_size 512 >/dev/null
		fi
		rpc nvme_namespace_create --nqn nqn.2014-08.io.nvemu:default -b VfuBig -n 16 >/dev/null
		rpc nvme_controller_attach_ns -c NVMeCtrl1 -n 16 >/dev/null
		if [ -n "${NVEMU_VFU_SETUP:-}" ]; then
			"$NVEMU_VFU_SETUP" "$rpc_cli" "$rpcsock" || { echo "run-vfu-guest: $NVEMU_VFU_SETUP failed" >&2; exit 1; }
		fi
	fi
fi

echo "$srv_pid" > "$run/srv.pid"
if [ -n "${NVEMU_VFU_FWD_EXAMPLE:-}" ]; then
	"$NVEMU_VFU_FWD_EXAMPLE" "$run/fwd.sock" --model-number "forwarded by example" \
		> "$run/fwd.out" 2>&1 &
	fwd_pid=$!
	for _ in $(seq 100); do [ -S "$run/fwd.sock" ] && break; sleep 0.05; done
	[ -S "$run/fwd.sock" ] || { echo "run-vfu-guest: the forwarder did not start" >&2; exit 1; }
fi

# @@LIVEUPDATE (see the top): 0 and the pause in ms, or non-zero and why.
live_update() {
	old=$(cat "$run/srv.pid")
	t0=$(date +%s%N)
	"$server" --take-over "$run/lu.sock" -r "$rpcsock" -l none -m none --poll-us 200 \
		${NVEMU_VFU_VERBOSE:+-vv} >> "$run/server.out" 2>> "$run/server.err" &
	new=$!
	for _ in $(seq 200); do [ -S "$run/lu.sock" ] && break; sleep 0.05; done
	rpc nvme_controller_suspend -c NVMeCtrl1 --live_update_notifier 1 >> "$run/rpc.log" 2>&1 ||
		{ echo "suspend failed"; return 1; }
	rpc nvemud_live_update --socket "$run/lu.sock" >> "$run/rpc.log" 2>&1 ||
		{ echo "nvemud_live_update failed"; return 1; }
	for _ in $(seq 200); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$old" 2>/dev/null && { echo "the old nvemud did not exit"; return 1; }
	echo "$new" > "$run/srv.pid"
	for _ in $(seq 200); do rpc rpc_get_methods >/dev/null 2>&1 && break; sleep 0.05; done
	rpc nvme_controller_resume -c NVMeCtrl1 --live_update 1 >> "$run/rpc.log" 2>&1 ||
		{ echo "resume failed"; return 1; }
	echo "paused_ms=$((($(date +%s%N) - t0) / 1000000)) old_pid=$old new_pid=$new"
}

# The guest's RPC requests (see the top).
mkfifo "$run/ctl.in" "$run/ctl.out"
watcher() {
	exec 3<>"$run/ctl.out" 4<>"$run/ctl.in"
	while IFS= read -r line <&3; do
		line=${line%$'\r'}
		case $line in
		"@@RPC "*) ;;
		"@@LIVEUPDATE")
			echo "run-vfu-guest: guest asks for a live update" >> "$run/rpc.log"
			out=$(live_update 2>&1) && st=0 || st=$?
			printf '%s\n' "$out" >> "$run/rpc.log"
			printf 'RC %s %s\n' "$st" "$(printf '%s' "$out" | tr -d ' \n\r\t')" >&4
			continue
			;;
		*) continue ;;
		esac
		line=${line#@@RPC }
		# @RUN@ in an argument: this run's private directory (snapshot files).
		line=${line//@RUN@/$run}
		# shellcheck disable=SC2086
		set -- $line
		echo "run-vfu-guest: guest asks: nvemu-rpc $*" >> "$run/rpc.log"
		if [ -n "$standalone" ]; then
			printf 'RC 99 standalone\n' >&4
			continue
		fi
		out=$(rpc "$@" 2>&1) && st=0 || st=$?
		printf '%s\n' "$out" >> "$run/rpc.log"
		printf 'RC %s %s\n' "$st" "$(printf '%s' "$out" | tr -d ' \n\r\t')" >&4
	done
}
watcher &
watch_pid=$!

mkdir -p "$run/shim"
cat > "$run/shim/qemu-system-x86_64" <<EOF
#!/bin/bash
# run-vfu-guest.sh's shim: the trixie QEMU plus vfio-user, see there.
D=$chroot_dir
args=()
mem=1024
prev=
for a in "\$@"; do
	case \$prev in
	-m) mem=\${a%%[Mm]} ;;
	-initrd) cat "\$a" "$kmod_cpio" > "\$a.vfu"; a=\$a.vfu ;;
	esac
	args+=("\$a")
	prev=\$a
done
export QEMU_MODULE_DIR=\$D/usr/lib/x86_64-linux-gnu/qemu
exec "\$D/lib64/ld-linux-x86-64.so.2" \\
	--library-path "\$D/lib/x86_64-linux-gnu:\$D/usr/lib/x86_64-linux-gnu" \\
	"\$D/usr/bin/qemu-system-x86_64" -L "\$D/usr/share/qemu" -L "\$D/usr/share/seabios" \\
	"\${args[@]}" \\
	-object memory-backend-memfd,id=mem,size=\${mem}M,share=on -machine memory-backend=mem \\
	-device '{"driver":"vfio-user-pci","socket":{"type":"unix","path":"$sock"}}' \\
	${vf_dev:+-device '$vf_dev'} \\
	-serial pipe:$run/ctl ${NVEMU_VFU_QEMU_EXTRA:-}
EOF
chmod +x "$run/shim/qemu-system-x86_64"

export NVEMU_GUEST_TIMEOUT=${NVEMU_GUEST_TIMEOUT:-600}
rc=0
for boot in $(seq "$boots"); do
	echo "== run-vfu-guest: boot $boot of $boots"
	PATH=$run/shim:$PATH "$src/tests/guest/run-guest.sh" "$build" "$script" || rc=$?
	[ "$rc" = 0 ] || break
	srv_pid=$(cat "$run/srv.pid")
	if ! kill -0 "$srv_pid" 2>/dev/null; then
		echo "run-vfu-guest: $(basename "$server") died" >&2
		rc=1
		break
	fi
done

srv_pid=$(cat "$run/srv.pid")
kill "$srv_pid" 2>/dev/null || true
wait "$srv_pid" 2>/dev/null || true
# A daemon started by a live update is not this shell's child: wait for it by pid.
for _ in $(seq 200); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.05; done
srv_pid=
echo "== $(basename "$server"):"
if [ -n "${NVEMU_VFU_VERBOSE:-}" ]; then cp "$run/server.err" "$NVEMU_VFU_VERBOSE"; fi
tail -n 8 "$run/server.err"
if [ "$rc" != 0 ] && [ -s "$run/rpc.log" ]; then
	echo "== RPC requests of the guest (last lines):"
	tail -n 30 "$run/rpc.log"
fi
exit "$rc"
