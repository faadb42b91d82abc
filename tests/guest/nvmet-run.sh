#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Run a guest script next to the Linux kernel NVMe/TCP target: run-guest.sh's
# guest, unchanged, booted from a cache directory of its own whose base image
# is run-guest.sh's followed by a cpio archive with the modules nvmet needs
# (configfs, nvmet, nvmet-tcp, null_blk) listed in /etc/nvmet-modules.order,
# which the guest script loads in that order.
#
#   tests/guest/nvmet-run.sh BUILD_DIR SCRIPT
#
# Environment: NVEMU_GUEST_CACHE (run-guest.sh's base image cache, default
# BUILD_DIR/guest-cache), NVEMU_GUEST_TIMEOUT.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SCRIPT" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
script=$2
base_cache=${NVEMU_GUEST_CACHE:-$build/guest-cache}
cache=$build/nvmet-guest-cache
mkdir -p "$cache"

# run-guest.sh builds its base image on its first run.
if [ ! -s "$base_cache/base.cpio.gz" ] || [ ! -s "$base_cache/vmlinuz" ]; then
	t=$(mktemp)
	echo 'exit 0' > "$t"
	NVEMU_GUEST_CACHE=$base_cache "$here/run-guest.sh" "$build" "$t" >/dev/null
	rm -f "$t"
fi

build_modules() {
	work=$cache/work
	rm -rf "$work"
	mkdir -p "$work/dl" "$work/ext" "$work/root/etc"
	# Same choice of kernel package as run-guest.sh.
	kpkg=$(apt-cache depends linux-image-amd64 |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n 1)
	kver=${kpkg#linux-image-}
	(cd "$work/dl" && apt-get download "$kpkg" >&2)
	dpkg -x "$work"/dl/*.deb "$work/ext"
	if ! cmp -s "$work/ext/boot/vmlinuz-$kver" "$base_cache/vmlinuz"; then
		echo "nvmet-run: $kpkg differs from the kernel in $base_cache;" \
			"rebuild run-guest.sh's base image (remove $base_cache)" >&2
		return 1
	fi
	depmod -b "$work/ext" "$kver"
	root=$work/root
	order=$root/etc/nvmet-modules.order
	: > "$order"
	for m in configfs nvmet nvmet-tcp null_blk; do
		modprobe -d "$work/ext" -S "$kver" --show-depends "$m" 2>/dev/null |
			awk '$1 == "insmod" { print $2 }' |
			while read -r ko; do
				rel=${ko#"$work/ext"}
				dst=${rel%.xz}
				mkdir -p "$root$(dirname "$rel")"
				case $rel in
				*.xz) xz -dc "$ko" > "$root$dst" ;;
				*)    cp "$ko" "$root$dst" ;;
				esac
				grep -qx "$dst" "$order" || echo "$dst" >> "$order"
			done
	done
	for m in nvmet-tcp null_blk; do
		grep -q "/$m.ko\|/$(echo $m | tr - _).ko" "$order" ||
			{ echo "nvmet-run: module $m not found in $kpkg" >&2; return 1; }
	done
	(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$cache/modules.cpio.gz"
	rm -rf "$work"
}

# The modules must match the base image's kernel: rebuild when it changes.
ksum=$(cksum < "$base_cache/vmlinuz")
if [ ! -s "$cache/modules.cpio.gz" ] || [ "$(cat "$cache/modules.kernel" 2>/dev/null)" != "$ksum" ]
then
	build_modules
	echo "$ksum" > "$cache/modules.kernel"
fi
# Concatenated cpio archives: the kernel unpacks them in order.
newer() { [ -n "$(find "$1" -newer "$2" 2>/dev/null)" ]; }
if [ ! -s "$cache/base.cpio.gz" ] || newer "$base_cache/base.cpio.gz" "$cache/base.cpio.gz" ||
   newer "$cache/modules.cpio.gz" "$cache/base.cpio.gz"; then
	cat "$base_cache/base.cpio.gz" "$cache/modules.cpio.gz" > "$cache/base.cpio.gz.tmp"
	mv "$cache/base.cpio.gz.tmp" "$cache/base.cpio.gz"
	cp "$base_cache/vmlinuz" "$cache/vmlinuz"
fi
NVEMU_GUEST_CACHE=$cache exec "$here/run-guest.sh" "$build" "$script"
