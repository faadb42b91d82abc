#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Boot a guest whose virtio-blk disks are served from this host over
# vhost-user-blk, and run a script in it:
#
#   tests/vhost-user-blk-guest/run-vblk-guest.sh BUILD_DIR GUEST_SCRIPT HOST_SCRIPT
#
# - The guest image and the run are tests/guest/run-guest.sh's (Debian kernel,
#   busybox, fio; serial-port status with a random tag). A
#   qemu-system-x86_64 shim first in PATH adds what vhost-user needs: guest
#   RAM in a shared memfd (the back end maps it), the devices HOST_SCRIPT
#   asks for, a monitor socket for hotplug, and an extra initramfs archive
#   with the virtio_pci and virtio_blk modules (/vblk/modules.order).
# - HOST_SCRIPT (bash, sourced here) defines host_setup, which starts the
#   servers (start_nvemud, qemu-storage-daemon...) and puts QEMU arguments in
#   the QEMU_EXTRA array, and any host_NAME functions the guest may call.
# - The guest reaches the host through a fourth serial port (ttyS3, a pipe
#   to a watcher here): it writes "@@RPC METHOD ARGS..." (nvemu-rpc against
#   the private nvemud) or "@@HOST NAME ARGS..." (host_NAME ARGS) and reads
#   back "RC <status> <output without blanks>".
# - Servers listen on unix sockets in a private directory ($run) and, for
#   NVMe/TCP, on 127.0.0.1 only.
set -eu

if [ $# -lt 3 ]; then
	echo "usage: $0 BUILD_DIR GUEST_SCRIPT HOST_SCRIPT" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
script=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
host_script=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
cache=${NVEMU_VBLK_CACHE:-$build/vblk-cache}
mkdir -p "$cache"

fail() { echo "1..1"; echo "not ok 1 - $* (a missing tool fails, never skips)"; exit 1; }
for tool in cpio depmod modprobe apt-get dpkg xz python3 qemu-system-x86_64; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool not found"
done
real_qemu=$(command -v qemu-system-x86_64)
NVEMUD=$build/src/daemon/nvemud
NVEMU_RPC=$build/src/rpc-cli/nvemu-rpc
[ -x "$NVEMUD" ] || { echo "run-vblk-guest: $NVEMUD not built" >&2; exit 1; }

# virtio_pci + virtio_blk for the kernel run-guest.sh boots (its base image has
# only the NVMe/TCP host modules).
kmod_cpio=$cache/virtio-blk.cpio.gz
if [ ! -s "$kmod_cpio" ]; then
	kpkg=$(apt-cache depends linux-image-amd64 |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n 1)
	[ -n "$kpkg" ] || { echo "run-vblk-guest: no kernel package" >&2; exit 1; }
	kver=${kpkg#linux-image-}
	work=$cache/kwork
	rm -rf "$work"
	mkdir -p "$work/dl" "$work/ext" "$work/root/vblk/ko"
	(cd "$work/dl" && apt-get download "$kpkg" >&2)
	dpkg -x "$work"/dl/*.deb "$work/ext"
	depmod -b "$work/ext" "$kver"
	: > "$work/root/vblk/modules.order"
	for m in virtio_pci virtio_blk; do
		modprobe -d "$work/ext" -S "$kver" --show-depends "$m" |
			awk '$1 == "insmod" { print $2 }' |
			while read -r ko; do
				dst=/vblk/ko/$(basename "${ko%.xz}")
				grep -qx "$dst" "$work/root/vblk/modules.order" && continue
				case $ko in
				*.xz) xz -dc "$ko" > "$work/root$dst" ;;
				*) cp "$ko" "$work/root$dst" ;;
				esac
				echo "$dst" >> "$work/root/vblk/modules.order"
			done
	done
	grep -q '/virtio_blk.ko$' "$work/root/vblk/modules.order" ||
		{ echo "run-vblk-guest: virtio_blk.ko not found in $kpkg" >&2; exit 1; }
	(cd "$work/root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$kmod_cpio.tmp"
	mv "$kmod_cpio.tmp" "$kmod_cpio"
	rm -rf "$work"
fi

run=$(mktemp -d "${TMPDIR:-/tmp}/nvemu-vblk.XXXXXX")
# util-linux's blkdiscard for the guest (busybox's has no -z, write zeroes),
# with its libraries, at /vblk/bin.
blkdiscard=$(PATH=$PATH:/sbin:/usr/sbin command -v blkdiscard || true)
[ -n "$blkdiscard" ] && "$blkdiscard" --help 2>&1 | grep -q -- '--zeroout' ||
	{ rm -rf "$run"; fail "util-linux blkdiscard not found"; }
mkdir -p "$run/tools/vblk/bin"
cp "$blkdiscard" "$run/tools/vblk/bin/"
for lib in $(ldd "$blkdiscard" | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
	cp -L --parents "$lib" "$run/tools"
done
(cd "$run/tools" && find . | cpio -o -H newc --quiet) | gzip -1 > "$run/tools.cpio.gz"
watch_pid=
HOST_PIDS=()
cleanup() {
	[ -n "$watch_pid" ] && { kill "$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true; }
	[ -d "$run" ] && stop_nvemud
	for p in "${HOST_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$run"
}
trap cleanup EXIT

RPCSOCK=$run/rpc.sock
rpc() { "$NVEMU_RPC" -s "$RPCSOCK" -t 20 "$@"; }
# start_nvemud ARGS...: a private nvemud (RPC on $RPCSOCK, no MCTP, no vfio-user)
# logging to $run/nvemud.log; 0 once it answers. Its pid is kept in a file:
# host functions the guest calls (a restart) run in the watcher's subshell.
start_nvemud() {
	"$NVEMUD" -r "$RPCSOCK" -m none -u none "$@" >> "$run/nvemud.log" 2>&1 &
	echo $! > "$run/nvemud.pid"
	for _ in $(seq 200); do
		rpc rpc_get_methods >/dev/null 2>&1 && return 0
		nvemud_alive || return 1
		sleep 0.05
	done
	return 1
}
nvemud_alive() { [ -s "$run/nvemud.pid" ] && kill -0 "$(cat "$run/nvemud.pid")" 2>/dev/null; }
# stop_nvemud [SIGNAL]: up to 15 s for it to exit.
stop_nvemud() {
	[ -s "$run/nvemud.pid" ] || return 0
	kill "-${1:-TERM}" "$(cat "$run/nvemud.pid")" 2>/dev/null || true
	for _ in $(seq 150); do
		nvemud_alive || break
		sleep 0.1
	done
	nvemud_alive && kill -KILL "$(cat "$run/nvemud.pid")" 2>/dev/null
	rm -f "$run/nvemud.pid"
}
# hmp COMMAND: one QEMU monitor command; its output.
hmp() {
	python3 - "$run/mon.sock" "$*" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
def until_prompt():
    buf = b""
    while not buf.endswith(b"(qemu) "):
        d = s.recv(4096)
        if not d:
            break
        buf += d
    return buf
until_prompt()
s.sendall(sys.argv[2].encode() + b"\n")
out = until_prompt().decode(errors="replace")
print("\n".join(l for l in out.splitlines()[1:] if not l.startswith("(qemu)")))
PY
}

QEMU_EXTRA=()
# shellcheck source=/dev/null
. "$host_script"
host_setup

mkfifo "$run/ctl.in" "$run/ctl.out"
watcher() {
	exec 3<>"$run/ctl.out" 4<>"$run/ctl.in"
	while IFS= read -r line <&3; do
		line=${line%$'\r'}
		case $line in
		"@@RPC "* | "@@HOST "*) ;;
		*) continue ;;
		esac
		echo "run-vblk-guest: guest asks: $line" >> "$run/host.log"
		# shellcheck disable=SC2086
		set -- ${line#@@* }
		case $line in
		"@@RPC "*) out=$(rpc "$@" 2>&1) && st=0 || st=$? ;;
		*) fn=host_$1; shift
		   if declare -F "$fn" >/dev/null; then
			out=$("$fn" "$@" 2>&1) && st=0 || st=$?
		   else
			out="no $fn"; st=127
		   fi ;;
		esac
		printf '%s\n' "$out" >> "$run/host.log"
		printf 'RC %s %s\n' "$st" "$(printf '%s' "$out" | tr -d ' \n\r\t')" >&4
	done
}
watcher &
watch_pid=$!

mkdir -p "$run/shim"
{
	echo '#!/bin/bash'
	echo '# run-vblk-guest.sh shim: shared guest RAM, vhost-user-blk devices, see there.'
	echo 'args=(); mem=1024; prev='
	echo 'for a in "$@"; do'
	echo '	case $prev in'
	echo '	-m) mem=${a%%[Mm]} ;;'
	echo "	-initrd) cat \"\$a\" \"$kmod_cpio\" \"$run/tools.cpio.gz\" > \"\$a.vblk\"; a=\$a.vblk ;;"
	echo '	esac'
	echo '	args+=("$a"); prev=$a'
	echo 'done'
	printf 'exec %q "${args[@]}"' "$real_qemu"
	echo ' -object memory-backend-memfd,id=mem,size=${mem}M,share=on -machine memory-backend=mem \'
	printf '\t-monitor unix:%q,server=on,wait=off -serial pipe:%q' "$run/mon.sock" "$run/ctl"
	for a in "${QEMU_EXTRA[@]}"; do printf ' %q' "$a"; done
	echo
} > "$run/shim/qemu-system-x86_64"
chmod +x "$run/shim/qemu-system-x86_64"

export NVEMU_GUEST_TIMEOUT=${NVEMU_GUEST_TIMEOUT:-600}
rc=0
PATH=$run/shim:$PATH "$src/tests/guest/run-guest.sh" "$build" "$script" || rc=$?

if [ -s "$run/nvemud.pid" ] && ! nvemud_alive; then
	echo "run-vblk-guest: nvemud died" >&2
	rc=1
fi
stop_nvemud
if [ "$rc" != 0 ] || [ -n "${NVEMU_VBLK_VERBOSE:-}" ]; then
	echo "== nvemud log (last lines):"
	tail -n 30 "$run/nvemud.log" 2>/dev/null | sed 's/^/# /'
	echo "== host requests of the guest (last lines):"
	tail -n 40 "$run/host.log" 2>/dev/null | sed 's/^/# /'
fi
if grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$run/nvemud.log" 2>/dev/null; then
	echo "run-vblk-guest: sanitizer report in the nvemud log" >&2
	rc=1
fi
exit "$rc"
