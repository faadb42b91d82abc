#!/bin/sh
# SPDX-License-Identifier: MIT
#
# NVMe/TCP benchmark (issue 4): fio in one QEMU (TCG) guest against nvemud's
# TCP target and against the Linux kernel target (nvmet-tcp on null_blk,
# memory_backed=1), both on the guest's loopback, and a table with the ratio
# nvemu/nvmet per workload.
#
#   bench/tcp-vs-nvmet.sh BUILD_DIR
#
# Environment: NVEMU_BENCH_RUNTIME (s per fio run, default 8),
# NVEMU_BENCH_RAMP (s, default 2), NVEMU_BENCH_SIZE_MB (each device, default
# 256), NVEMU_BENCH_ROUNDS (repeat the set, keep each side's best; default
# 1), NVEMU_GUEST_TIMEOUT (default 600), NVEMU_GUEST_CACHE (run-guest.sh's
# base image cache, default BUILD_DIR/guest-cache).
#
# The guest is tests/guest/run-guest.sh's, unchanged: this wrapper gives it a
# cache directory of its own whose base image is run-guest.sh's base image
# followed by a second cpio archive with the modules the kernel target needs
# (configfs, nvmet, nvmet-tcp, null_blk) and /etc/bench-modules.order; the
# guest script (bench/guest-tcp-bench.sh) loads them. The kernel package is
# the one run-guest.sh uses; its vmlinuz must match the cached one.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
base_cache=${NVEMU_GUEST_CACHE:-$build/guest-cache}
cache=$build/bench-guest-cache
runtime=${NVEMU_BENCH_RUNTIME:-8}
ramp=${NVEMU_BENCH_RAMP:-2}
size_mb=${NVEMU_BENCH_SIZE_MB:-256}
rounds=${NVEMU_BENCH_ROUNDS:-1}
mkdir -p "$cache"

for b in src/daemon/nvemud src/rpc-cli/nvemu-rpc; do
	[ -x "$build/$b" ] || { echo "$0: $build/$b missing (ninja -C $build)" >&2; exit 1; }
done

# run-guest.sh builds its base image on its first run.
if [ ! -s "$base_cache/base.cpio.gz" ] || [ ! -s "$base_cache/vmlinuz" ]; then
	echo "tcp-vs-nvmet: building run-guest.sh's base image" >&2
	t=$(mktemp)
	echo 'exit 0' > "$t"
	NVEMU_GUEST_CACHE=$base_cache "$src/tests/guest/run-guest.sh" "$build" "$t" >/dev/null
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
		echo "tcp-vs-nvmet: $kpkg differs from the kernel in $base_cache;" \
			"rebuild run-guest.sh's base image (remove $base_cache)" >&2
		return 1
	fi
	depmod -b "$work/ext" "$kver"
	root=$work/root
	: > "$root/etc/bench-modules.order"
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
				grep -qx "$dst" "$root/etc/bench-modules.order" ||
					echo "$dst" >> "$root/etc/bench-modules.order"
			done
	done
	for m in nvmet-tcp null_blk; do
		grep -q "/$m.ko" "$root/etc/bench-modules.order" ||
			grep -q "/$(echo $m | tr - _).ko" "$root/etc/bench-modules.order" ||
			{ echo "tcp-vs-nvmet: module $m not found in $kpkg" >&2; return 1; }
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

script=$(mktemp "${TMPDIR:-/tmp}/nvemu-bench.XXXXXX")
trap 'rm -f "$script"' EXIT
{
	echo "RUNTIME=$runtime"
	echo "RAMP=$ramp"
	echo "SIZE_MB=$size_mb"
	echo "ROUNDS=$rounds"
	cat "$src/bench/guest-tcp-bench.sh"
} > "$script"
echo "tcp-vs-nvmet: booting the guest (TCG, 2 vCPUs); runtime ${runtime}s + ramp ${ramp}s" \
	"per fio run, ${size_mb} MiB per device, $rounds round(s)" >&2
NVEMU_GUEST_CACHE=$cache NVEMU_GUEST_TIMEOUT=${NVEMU_GUEST_TIMEOUT:-600} \
	"$src/tests/guest/run-guest.sh" "$build" "$script"
