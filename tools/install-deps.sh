#!/bin/sh
# Installs the Debian bookworm packages nvemu builds and tests with.
# Runs apt-get only for what is missing, so a second run is quick.
set -eu
PKGS="build-essential meson ninja-build pkg-config python3 clang libclang-rt-14-dev \
libnvme-dev libdbus-1-dev libjson-c-dev libjansson-dev liburing-dev libisal-dev uuid-dev libblkid-dev \
libcmocka-dev libssl-dev nvme-cli valgrind \
qemu-system-x86 qemu-utils cpio kmod fio busybox-static debootstrap fdisk xz-utils \
scdoc man-db debhelper dpkg-dev fakeroot lintian \
librbd-dev librados-dev ceph-mon ceph-osd ceph-mgr ceph-common"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ -n "$missing" ]; then
	echo "install-deps: installing$missing" >&2
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
	updated=1
fi
# promtool (the metrics test's checker) comes out of Debian's prometheus
# package without installing it: that would start a Prometheus server.
if ! command -v promtool >/dev/null 2>&1; then
	echo "install-deps: installing promtool from Debian's prometheus package" >&2
	[ -n "${updated:-}" ] || $SUDO apt-get update -qq
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -qq prometheus >/dev/null && dpkg-deb -x prometheus_*.deb x)
	$SUDO install -m 0755 "$tmp/x/usr/bin/promtool" /usr/local/bin/promtool
	rm -rf "$tmp"
fi
