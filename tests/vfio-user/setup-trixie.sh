#!/bin/sh
# Build (once) a Debian trixie chroot holding QEMU >= 10.1 (vfio-user client) from
# trixie-backports.  Bookworm's QEMU 7.2 has no vfio-user-pci.  The chroot is cached under
# $NVEMU_CHROOT_CACHE (default /var/tmp/nvemu-trixie); a stamp file marks completion.
# Prints the chroot directory on success.
set -eu

DIR=${NVEMU_CHROOT_CACHE:-/var/tmp/nvemu-trixie}
# The mirror this machine's apt uses (or $NVEMU_DEBIAN_MIRROR).
MIRROR=$("$(dirname "$0")/../../tools/debian-mirror.sh")
STAMP=$DIR/.nvemu-qemu-ready

if [ -f "$STAMP" ] && [ -x "$DIR/usr/bin/qemu-system-x86_64" ]; then
	echo "$DIR"
	exit 0
fi

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup-trixie: $1 not found" >&2; exit 77; }; }
need debootstrap
[ "$(id -u)" = 0 ] || { echo "setup-trixie: needs root for debootstrap" >&2; exit 77; }

# A half-built chroot from an interrupted run is not trusted.
if [ -d "$DIR" ] && [ ! -f "$DIR/.nvemu-debootstrap-done" ]; then
	rm -rf "$DIR"
fi
if [ ! -f "$DIR/.nvemu-debootstrap-done" ]; then
	mkdir -p "$DIR"
	debootstrap --variant=minbase trixie "$DIR" "$MIRROR" >&2
	touch "$DIR/.nvemu-debootstrap-done"
fi

echo "deb $MIRROR trixie-backports main" > "$DIR/etc/apt/sources.list.d/backports.list"
# chroot needs /proc for some maintainer scripts; unmount whatever happens.
mounted=""
cleanup() { [ -n "$mounted" ] && umount "$DIR/proc" 2>/dev/null || true; }
trap cleanup EXIT
if ! mountpoint -q "$DIR/proc"; then
	mount -t proc proc "$DIR/proc" && mounted=1
fi
cp /etc/resolv.conf "$DIR/etc/resolv.conf" 2>/dev/null || true
chroot "$DIR" apt-get update >&2
chroot "$DIR" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	-t trixie-backports qemu-system-x86 >&2
"$DIR/usr/bin/qemu-system-x86_64" --version >/dev/null 2>&1 || \
	chroot "$DIR" /usr/bin/qemu-system-x86_64 --version >&2
touch "$STAMP"
echo "$DIR"
