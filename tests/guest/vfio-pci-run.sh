#!/bin/sh
# SPDX-License-Identifier: MIT
#
# VFIO on a real PCIe function: a QEMU guest (TCG, q35 with -device
# intel-iommu, intel_iommu=on) whose hardware is QEMU's own -device nvme.
# Inside, the device is bound to vfio-pci and driven by nvemu's host driver
# (trtype pcie): tests/guest/vfio-pci-io writes and reads back on every queue
# with SGLs, nosgl, INTx (nomsix) and polling; then nvemud attaches it,
# serves its namespace over NVMe/TCP on the guest's loopback and the kernel's
# host runs fio verify against that (tests/guest/vfio-pci-guest.sh).
#
#   tests/guest/vfio-pci-run.sh BUILD_DIR
#
# Reuses the base image tests/guest/run-guest.sh builds (running it once with
# an empty script when it is missing) and adds the kernel's VFIO modules,
# taken from the same Debian kernel package, to a per-run archive.
set -eu

if [ $# -lt 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
cache=${NVEMU_GUEST_CACHE:-$build/guest-cache}
timeout_s=${NVEMU_GUEST_TIMEOUT:-400}
io=$build/tests/vfio-pci-io

for tool in qemu-system-x86_64 cpio depmod modprobe apt-get apt-cache dpkg xz; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "1..1"
		echo "not ok 1 - $tool not found (run tools/install-deps.sh)"
		exit 1
	fi
done
if [ ! -x "$io" ]; then
	echo "1..1"
	echo "not ok 1 - $io not built"
	exit 1
fi

run=$(mktemp -d "${TMPDIR:-/tmp}/nvemu-vfio-guest.XXXXXX")
trap 'rm -rf "$run"' EXIT

if [ ! -s "$cache/base.cpio.gz" ] || [ ! -s "$cache/vmlinuz" ]; then
	echo 'exit 0' > "$run/empty.sh"
	"$here/run-guest.sh" "$build" "$run/empty.sh" >/dev/null
fi

# The VFIO modules of the kernel the base image boots, once.
if [ ! -s "$cache/vfio.cpio.gz" ]; then
	work=$cache/vfio-work
	rm -rf "$work"
	mkdir -p "$work/dl" "$work/ext" "$work/root/etc"
	kpkg=$(apt-cache depends linux-image-amd64 |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n 1)
	kver=${kpkg#linux-image-}
	(cd "$work/dl" && apt-get download "$kpkg" >&2)
	dpkg -x "$work"/dl/*.deb "$work/ext"
	depmod -b "$work/ext" "$kver"
	: > "$work/root/etc/vfio-modules.order"
	for m in vfio vfio_iommu_type1 vfio-pci; do
		modprobe -d "$work/ext" -S "$kver" --show-depends "$m" 2>/dev/null |
			awk '$1 == "insmod" { print $2 }' |
			while read -r ko; do
				rel=${ko#"$work/ext"}
				dst=${rel%.xz}
				mkdir -p "$work/root$(dirname "$rel")"
				case $rel in
				*.xz) xz -dc "$ko" > "$work/root$dst" ;;
				*) cp "$ko" "$work/root$dst" ;;
				esac
				grep -qx "$dst" "$work/root/etc/vfio-modules.order" ||
					echo "$dst" >> "$work/root/etc/vfio-modules.order"
			done
	done
	grep -q vfio-pci "$work/root/etc/vfio-modules.order" ||
		{ echo "vfio-pci-run: no vfio-pci module in $kpkg" >&2; exit 1; }
	(cd "$work/root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$cache/vfio.cpio.gz"
	rm -rf "$work"
fi

# The guest script and its helpers; the driver program, nvemud and nvemu-rpc with their libraries.
mkdir -p "$run/root/test" "$run/root/nvemu/bin" "$run/root/nvemu/lib"
cp "$here/vfio-pci-guest.sh" "$run/root/test/script.sh"
cp "$here/lib.sh" "$run/root/test/lib.sh"
for bin in "$io" "$build/src/daemon/nvemud" "$build/src/rpc-cli/nvemu-rpc"; do
	cp "$bin" "$run/root/nvemu/bin/"
	for lib in $(ldd "$bin" | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
		case $lib in
		/lib/* | /lib64/* | /usr/lib/*) [ -e "$run/root$lib" ] || cp -L --parents "$lib" "$run/root" ;;
		*) cp -L "$lib" "$run/root/nvemu/lib/" ;; # build-tree libnvemu.so
		esac
	done
done
(cd "$run/root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$run/run.cpio.gz"
cat "$cache/base.cpio.gz" "$cache/vfio.cpio.gz" "$run/run.cpio.gz" > "$run/initrd"
truncate -s 64M "$run/disk.img"

tag=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
: > "$run/console.log"
: > "$run/out.log"
: > "$run/status.log"
# bookworm's QEMU 7.2 (q35, intel-iommu, TCG) was seen to die of SIGSEGV once before the
# guest printed anything: that is QEMU's crash, not the test's result, so such a run
# (killed by a signal, empty console) is retried once, and says so.
for attempt in 1 2; do
	rc=0
	: > "$run/console.log"
	timeout "$timeout_s" qemu-system-x86_64 -accel tcg -nodefaults -nic none -display none \
		-machine q35 -cpu max -smp 2 -m 1536 -no-reboot \
		-device intel-iommu \
		-drive file="$run/disk.img",if=none,id=nvm,format=raw \
		-device nvme,serial=QEMUNVME0001,drive=nvm,max_ioqpairs=4 \
		-kernel "$cache/vmlinuz" -initrd "$run/initrd" \
		-append "console=ttyS0 panic=-1 quiet intel_iommu=on nvemu.tag=$tag" \
		-serial "file:$run/console.log" -serial "file:$run/out.log" \
		-serial "file:$run/status.log" || rc=$?
	if [ "$rc" -gt 128 ] && [ "$rc" -ne 137 ] && [ ! -s "$run/console.log" ] && [ "$attempt" = 1 ]; then
		echo "vfio-pci-run: QEMU died (exit $rc) before the guest booted; retrying once" >&2
		continue
	fi
	break
done

cat "$run/out.log"
status=$(sed -n "s/^NVEMU-GUEST-STATUS $tag \([0-9]*\).*/\1/p" "$run/status.log" | tr -d '\r' |
	head -n 1)
if [ -z "$status" ]; then
	echo "vfio-pci-run: no status from the guest (qemu exit $rc); console:" >&2
	tail -n 40 "$run/console.log" >&2
	exit 1
fi
if [ "$status" != 0 ]; then
	echo "vfio-pci-run: guest script failed with status $status; console tail:" >&2
	tail -n 30 "$run/console.log" >&2
fi
exit "$status"
