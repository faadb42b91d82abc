#!/bin/sh
# Installs the Debian bookworm packages nvemu builds and tests with.
# Runs apt-get only for what is missing, so a second run is quick.
set -eu
PKGS="build-essential meson ninja-build pkg-config python3 clang libclang-rt-14-dev \
libnvme-dev libdbus-1-dev libjson-c-dev libjansson-dev liburing-dev libisal-dev uuid-dev libblkid-dev \
libcmocka-dev nvme-cli valgrind \
qemu-system-x86 qemu-utils cpio kmod fio busybox-static debootstrap fdisk xz-utils"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
