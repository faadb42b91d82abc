#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Run a script inside a QEMU (TCG) guest booted from a Debian kernel and a
# busybox initramfs, and exit with the script's status.
#
#   tests/guest/run-guest.sh BUILD_DIR SCRIPT
#
# The base image (kernel, modules nvme-core/nvme-fabrics/nvme-tcp and their
# dependencies, busybox-static, nvme-cli, fio, each with its ldd libraries)
# is built once from `apt-get download`ed packages and cached in
# ${NVEMU_GUEST_CACHE:-BUILD_DIR/guest-cache}. Each run appends a small
# archive with the script, tests/guest/lib.sh and nvemu's binaries from
# BUILD_DIR (nvemud, nvemu-rpc, tests/guest/nvemu-tcp-target, with their
# libraries).
#
# NVEMU_GUEST_REACTORS=N puts nvemu.reactors=N on the guest kernel's command
# line: lib.sh's start_nvemud then runs nvemud --reactors N.
#
# The guest has no network device (-nic none): everything stays on its
# loopback. Serial ports: ttyS0 kernel console, ttyS1 the script's output,
# ttyS2 a status line carrying a per-run random tag, so the script's own
# output cannot fake a result.
#
# NVEMU_GUEST_KERNEL=bookworm-backports boots the newest kernel of
# bookworm-backports instead (6.12: its host has DH-HMAC-CHAP and TLS), fetched
# through a temporary apt configuration on this machine's own mirror
# (tools/debian-mirror.sh), with a cache directory of its own: the usual one
# with "-bpo" appended (or $NVEMU_GUEST_CACHE_BPO).
#
# Needs on the host: qemu-system-x86_64, cpio, depmod/modprobe (kmod),
# apt-get, and the runtime libraries of nvme-cli and fio (apt-get install
# fio nvme-cli) so that ldd resolves them.
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 BUILD_DIR SCRIPT" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
script=$2
cache=${NVEMU_GUEST_CACHE:-$build/guest-cache}
[ -z "${NVEMU_GUEST_KERNEL:-}" ] || cache=${NVEMU_GUEST_CACHE_BPO:-$cache-bpo}
timeout_s=${NVEMU_GUEST_TIMEOUT:-280}
mkdir -p "$cache"

for tool in qemu-system-x86_64 cpio depmod modprobe apt-get dpkg; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		# A missing tool is a failure, not a skip: tools/install-deps.sh installs it.
		echo "1..1"
		echo "not ok 1 - $tool not found (run tools/install-deps.sh)"
		exit 1
	fi
done

# Copy binaries and every library ldd lists into root, at the same paths.
copy_with_libs() {
	root=$1
	shift
	for bin in "$@"; do
		ldd "$bin" 2>/dev/null | grep -q "not found" && {
			echo "run-guest: $bin: libraries missing on the host:" >&2
			ldd "$bin" | grep "not found" >&2
			return 1
		}
		for lib in $(ldd "$bin" 2>/dev/null | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
			case $lib in
			/lib/* | /lib64/* | /usr/lib/*)
				[ -e "$root$lib" ] || cp -L --parents "$lib" "$root" ;;
			*)	# build-tree libraries: their RUNPATH is $ORIGIN-relative
				mkdir -p "$root/nvemu/lib"
				cp -L "$lib" "$root/nvemu/lib/" ;;
			esac
		done
	done
}

# The Linux host's TLS needs tlshd (ktls-utils), keyctl and an nvme-cli with
# --tls and keyring support: none is in bookworm, so they come from trixie,
# unpacked under /trixie with trixie's libc and run through its dynamic
# loader (wrappers tlshd, keyctl, nvme-tls in /usr/local/bin).
add_trixie_tls_tools() {
	_w=$1/trixie
	mkdir -p "$_w/lists/partial" "$_w/cache/archives/partial" "$_w/dl"
	echo "deb $3 trixie main" > "$_w/sources.list"
	_o="-o Dir::Etc::SourceList=$_w/sources.list -o Dir::Etc::SourceParts=/dev/null
	    -o Dir::State::Lists=$_w/lists -o Dir::Cache=$_w/cache -o Dir::State::status=/dev/null
	    -o APT::Sandbox::User=root"
	# shellcheck disable=SC2086
	apt-get $_o -qq update >&2
	# shellcheck disable=SC2086
	(cd "$_w/dl" && apt-get $_o -qq download libc6 libgcc-s1 ktls-utils nvme-cli libnvme1t64 \
		keyutils libkeyutils1 libglib2.0-0t64 libgnutls30t64 libnl-3-200 libnl-genl-3-200 \
		libjson-c5 libffi8 libpcre2-8-0 libmount1 libselinux1 libblkid1 libp11-kit0 \
		libidn2-0 libunistring5 libtasn1-6 libnettle8t64 libhogweed6t64 libgmp10 libzstd1 \
		zlib1g libssl3t64 libuuid1 libdbus-1-3 libsystemd0 libcap2 liblz4-1 liblzma5 \
		libgcrypt20 libgpg-error0 libatomic1 >&2)
	mkdir -p "$2/trixie" "$2/usr/local/bin"
	for deb in "$_w"/dl/*.deb; do
		dpkg -x "$deb" "$2/trixie"
	done
	rm -rf "$2/trixie/usr/share"
	for tool in usr/sbin/tlshd usr/bin/keyctl usr/sbin/nvme; do
		name=${tool##*/}
		[ "$name" = nvme ] && name=nvme-tls
		cat > "$2/usr/local/bin/$name" <<WRAP
#!/bin/sh
exec /trixie/usr/lib64/ld-linux-x86-64.so.2 --library-path /trixie/usr/lib/x86_64-linux-gnu /trixie/$tool "\$@"
WRAP
		chmod +x "$2/usr/local/bin/$name"
	done
}

build_base() {
	work=$cache/work
	rm -rf "$work"
	mkdir -p "$work/dl" "$work/ext" "$work/root"
	kapt=""
	extra_mods=""
	case ${NVEMU_GUEST_KERNEL:-} in
	"") ;;
	bookworm-backports)
		mirror=$("$(dirname "$0")/../../tools/debian-mirror.sh")
		mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
		echo "deb $mirror bookworm-backports main" > "$work/apt/sources.list"
		kapt="-o Dir::Etc::SourceList=$work/apt/sources.list -o Dir::Etc::SourceParts=/dev/null
		      -o Dir::State::Lists=$work/apt/lists -o Dir::Cache=$work/apt/cache
		      -o APT::Sandbox::User=root"
		# shellcheck disable=SC2086
		apt-get $kapt -qq update >&2
		# The host's DH-HMAC-CHAP and TLS needs (built in or modules).
		extra_mods="nvme-auth dh_generic hmac sha256_generic sha512_generic tls"
		;;
	*) echo "run-guest: NVEMU_GUEST_KERNEL=$NVEMU_GUEST_KERNEL: unknown" >&2; return 1 ;;
	esac
	# shellcheck disable=SC2086
	kpkg=$(apt-cache $kapt depends linux-image-amd64 |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n 1)
	[ -n "$kpkg" ] || { echo "run-guest: no kernel package found" >&2; return 1; }
	kver=${kpkg#linux-image-}
	echo "run-guest: building the base image ($kpkg) in $cache" >&2
	# shellcheck disable=SC2086
	(cd "$work/dl" && apt-get $kapt download "$kpkg" >&2 &&
		apt-get download busybox-static nvme-cli fio >&2)
	for deb in "$work"/dl/*.deb; do
		dpkg -x "$deb" "$work/ext"
	done
	depmod -b "$work/ext" "$kver"

	root=$work/root
	mkdir -p "$root/bin" "$root/sbin" "$root/etc" "$root/proc" "$root/sys" "$root/dev" \
		"$root/tmp" "$root/run" "$root/mnt" "$root/var/tmp" "$root/etc/nvme"
	cp "$work/ext/bin/busybox" "$root/bin/busybox"
	for applet in $("$root/bin/busybox" --list); do
		[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
	done
	mkdir -p "$root/usr/sbin" "$root/usr/bin"
	cp "$work/ext/usr/sbin/nvme" "$root/usr/sbin/nvme"
	cp "$work/ext/usr/bin/fio" "$root/usr/bin/fio"
	copy_with_libs "$root" "$root/usr/sbin/nvme" "$root/usr/bin/fio"

	# Modules in load order (modprobe resolves the dependencies).
	: > "$root/etc/modules.order"
	for m in nvme-tcp crc32c_generic crc32c-intel $extra_mods; do
		modprobe -d "$work/ext" -S "$kver" --show-depends "$m" 2>/dev/null |
			awk '$1 == "insmod" { print $2 }' |
			while read -r ko; do
				rel=${ko#"$work/ext"}
				case $rel in
				*.xz) dst=${rel%.xz}; mkdir -p "$root$(dirname "$rel")"
				      xz -dc "$ko" > "$root$dst" ;;
				*)    dst=$rel; mkdir -p "$root$(dirname "$rel")"; cp "$ko" "$root$dst" ;;
				esac
				grep -qx "$dst" "$root/etc/modules.order" || echo "$dst" >> "$root/etc/modules.order"
			done
	done
	grep -q nvme-tcp "$root/etc/modules.order" || { echo "run-guest: nvme-tcp module not found" >&2; return 1; }
	[ -z "$kapt" ] || add_trixie_tls_tools "$work" "$root" "$mirror"

	cat > "$root/init" <<'INIT'
#!/bin/sh
export PATH=/nvemu/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin
export LD_LIBRARY_PATH=/nvemu/lib
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
while read -r ko; do insmod "$ko" 2>/dev/null; done < /etc/modules.order
tag=$(sed -n 's/.*nvemu\.tag=\([^ ]*\).*/\1/p' /proc/cmdline)
sh /test/script.sh > /dev/ttyS1 2>&1
rc=$?
echo "NVEMU-GUEST-STATUS $tag $rc" > /dev/ttyS2
sync
poweroff -f
INIT
	chmod +x "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$cache/base.cpio.gz.tmp"
	cp "$work/ext/boot/vmlinuz-$kver" "$cache/vmlinuz"
	mv "$cache/base.cpio.gz.tmp" "$cache/base.cpio.gz"
	rm -rf "$work"
}

if [ ! -s "$cache/base.cpio.gz" ] || [ ! -s "$cache/vmlinuz" ]; then
	build_base
fi

run=$(mktemp -d "${TMPDIR:-/tmp}/nvemu-guest.XXXXXX")
trap 'rm -rf "$run"' EXIT
mkdir -p "$run/root/test" "$run/root/nvemu/bin"
cp "$script" "$run/root/test/script.sh"
# The scripts source their shared helpers from next to themselves.
cp "$(dirname "$0")/lib.sh" "$run/root/test/lib.sh"
for b in src/daemon/nvemud src/rpc-cli/nvemu-rpc src/perf/nvemu-perf tests/guest/nvemu-tcp-target; do
	if [ -x "$build/$b" ]; then
		cp "$build/$b" "$run/root/nvemu/bin/"
		copy_with_libs "$run/root" "$build/$b"
	fi
done
(cd "$run/root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$run/run.cpio.gz"
cat "$cache/base.cpio.gz" "$run/run.cpio.gz" > "$run/initrd"

tag=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
: > "$run/console.log"
: > "$run/out.log"
: > "$run/status.log"
rc=0
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -nodefaults -nic none -display none \
	-machine q35 -cpu max -smp 2 -m 1536 -no-reboot \
	-kernel "$cache/vmlinuz" -initrd "$run/initrd" \
	-append "console=ttyS0 panic=-1 quiet nvemu.tag=$tag${NVEMU_GUEST_REACTORS:+ nvemu.reactors=$NVEMU_GUEST_REACTORS}" \
	-serial "file:$run/console.log" -serial "file:$run/out.log" \
	-serial "file:$run/status.log" || rc=$?

cat "$run/out.log"
status=$(sed -n "s/^NVEMU-GUEST-STATUS $tag \([0-9]*\).*/\1/p" "$run/status.log" | tr -d '\r' | head -n 1)
if [ -z "$status" ]; then
	echo "run-guest: no status from the guest (qemu exit $rc); console:" >&2
	tail -n 40 "$run/console.log" >&2
	exit 1
fi
if [ "$status" != 0 ]; then
	echo "run-guest: guest script failed with status $status; console tail:" >&2
	tail -n 20 "$run/console.log" >&2
fi
exit "$status"
