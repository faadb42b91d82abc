#!/bin/sh
# The Debian package, as an administrator meets it: dpkg-buildpackage on a
# copy of the tree, lintian, then install into a clean bookworm root
# (debootstrap, cached under $NVEMU_PKG_CACHE), run the packaged nvemud with
# the packaged unit's command line and configuration, use it (RPC, NVMe/TCP
# I/O with nvemu-perf, /metrics), read every man page, and purge: nothing of
# the packages may be left behind. TAP output.
#
# Then systemd-guest.sh boots the packages with systemd as init in a QEMU
# guest: the unit, its socket, reload, the journal and the kernel host's
# `nvme discover` / `nvme connect` against the packaged daemon.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:?usage: deb.sh BUILD_DIR}
CACHE=${NVEMU_PKG_CACHE:-$BUILD/pkg-cache}
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
diag() { printf '%s\n' "$@" | sed 's/^/# /' | head -40; }
check() { d=$1; shift; if "$@" >"$T/out" 2>&1; then ok "$d"; else nok "$d"; diag "$(tail -20 "$T/out")"; fi; }
finish() { echo "1..$n"; [ "$fails" -eq 0 ]; exit $?; }

for t in dpkg-buildpackage lintian debootstrap fakeroot; do
	command -v $t >/dev/null 2>&1 || { nok "$t not installed (tools/install-deps.sh installs it)"; finish; }
done
[ "$(id -u)" = 0 ] || { nok "needs root (debootstrap, chroot)"; finish; }
T=$(mktemp -d /var/tmp/nvemu-pkg.XXXXXX)
ROOT=$T/root
cleanup() {
	[ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null
	for m in proc dev; do umount "$ROOT/$m" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

# --- build
mkdir -p "$T/src"
(cd "$SRC" && tar --exclude='./build*' --exclude=./.git --exclude='./debian/.debhelper' -cf - .) |
	(cd "$T/src" && tar -xf -)
start=$(date +%s)
if (cd "$T/src" && dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1; then
	ok "dpkg-buildpackage -us -uc -b ($(($(date +%s) - start)) s)"
else
	nok "dpkg-buildpackage"
	diag "$(tail -30 "$T/build.log")"
	finish
fi
ls "$T"/*.deb >"$T/debs"
for p in nvemu libnvemu0 libnvemu-dev; do
	ls "$T/${p}_"*.deb >/dev/null 2>&1 && ok "package $p built" || nok "package $p built"
done
if lintian --allow-root --fail-on error,warning "$T"/*.changes >"$T/lintian" 2>&1; then
	ok "lintian: no errors or warnings beyond the documented overrides"
else
	nok "lintian"
	diag "$(cat "$T/lintian")"
fi
X=$T/x
dpkg-deb -x "$T"/nvemu_*.deb "$X"
dpkg-deb -x "$T"/libnvemu-dev_*.deb "$X"
for f in "$X"/usr/share/man/man*/*; do
	if MANWIDTH=80 man -l "$f" >/dev/null 2>"$T/manerr" && [ ! -s "$T/manerr" ]; then
		ok "man -l $(basename "$f")"
	else
		nok "man -l $(basename "$f")"
		diag "$(cat "$T/manerr")"
	fi
done
[ "$(ls "$X"/usr/share/man/man*/* | wc -l)" -eq 4 ] && ok "four man pages" || nok "four man pages"
grep -q "^Cflags:.*-I" "$X"/usr/lib/*/pkgconfig/libnvemu.pc && ok "libnvemu.pc" || nok "libnvemu.pc"
UNIT=$X/lib/systemd/system/nvemud.service
if command -v systemd-analyze >/dev/null 2>&1; then
	# verify checks ExecStart's binary: point it at the extracted one.
	sed "s|/usr/bin/nvemud|$X/usr/bin/nvemud|" "$UNIT" >"$T/nvemud.service"
	cp "$X/lib/systemd/system/nvemud.socket" "$T/nvemud.socket"
	grep -q "^ExecReload=" "$T/nvemud.service" && ok "nvemud.service has ExecReload" || nok "nvemud.service has ExecReload"
	if LD_LIBRARY_PATH=$X/usr/lib/x86_64-linux-gnu systemd-analyze verify --man=no "$T/nvemud.socket" "$T/nvemud.service" >"$T/verify" 2>&1 && ! grep -v "^$" "$T/verify" | grep -qv "is not executable: No such file"; then
		ok "systemd-analyze verify nvemud.socket nvemud.service"
	else
		nok "systemd-analyze verify nvemud.socket nvemud.service"
		diag "$(cat "$T/verify")"
	fi
fi

# --- a clean bookworm root with the libraries' dependencies (cached)
MIRROR=$("$SRC/tools/debian-mirror.sh") || { nok "no Debian mirror in the apt configuration"; finish; }
if [ ! -f "$CACHE/root.tar" ]; then
	rm -rf "$CACHE/tmp"
	mkdir -p "$CACHE/tmp"
	if debootstrap --variant=minbase bookworm "$CACHE/tmp" "$MIRROR" >"$T/debootstrap.log" 2>&1 &&
		tar -C "$CACHE/tmp" -cf "$CACHE/root.tar" .; then
		ok "debootstrap bookworm (cached for the next run)"
	else
		nok "debootstrap"
		diag "$(tail -20 "$T/debootstrap.log")"
		finish
	fi
	rm -rf "$CACHE/tmp"
fi
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$CACHE/root.tar"
mount -t proc proc "$ROOT/proc" && mount --bind /dev "$ROOT/dev" || { nok "mount /proc, /dev"; finish; }
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null
find "$ROOT" -xdev \( -path "$ROOT/proc" -o -path "$ROOT/dev" -o -path "$ROOT/var/lib/dpkg" -o \
	-path "$ROOT/var/cache" -o -path "$ROOT/var/log" -o -path "$ROOT/var/lib/apt" -o -path "$ROOT/tmp" \) \
	-prune -o -print | sed "s|^$ROOT||" | sort >"$T/before"
mkdir -p "$ROOT/tmp/debs"
# The three packages (not the -dbgsym ones beside them).
cp "$T"/nvemu_*.deb "$T"/libnvemu0_*.deb "$T"/libnvemu-dev_*.deb "$ROOT/tmp/debs/"
if chroot "$ROOT" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /tmp/debs/*.deb' >"$T/install.log" 2>&1; then
	ok "apt installs the three packages with their dependencies into a clean root"
else
	nok "install"
	diag "$(tail -20 "$T/install.log")"
	finish
fi
[ -f "$ROOT/etc/nvemu/nvemu.json" ] && ok "/etc/nvemu/nvemu.json installed" || nok "/etc/nvemu/nvemu.json"
grep -q "^/etc/nvemu/nvemu.json$" "$ROOT/var/lib/dpkg/info/nvemu.conffiles" 2>/dev/null &&
	ok "/etc/nvemu/nvemu.json is a conffile" || nok "/etc/nvemu/nvemu.json is a conffile"

# --- run it as the unit does (the ExecStart line, an unprivileged user)
cmd=$(sed -n 's/^ExecStart=//p' "$ROOT/lib/systemd/system/nvemud.service")
mkdir -p "$ROOT/run/nvemu"
chown 65534:65534 "$ROOT/run/nvemu"
chroot --userspec=65534:65534 "$ROOT" sh -c "exec $cmd" >"$T/daemon.log" 2>&1 &
DPID=$!
for i in $(seq 1 100); do grep -q "info: ready" "$T/daemon.log" && break; sleep 0.1; done
if grep -q "info: ready" "$T/daemon.log"; then
	ok "packaged nvemud starts with the packaged configuration"
else
	nok "packaged nvemud starts"
	diag "$(cat "$T/daemon.log")"
	finish
fi
check "nvemu-rpc in the root lists the configured subsystem" \
	sh -c "chroot --userspec=65534:65534 '$ROOT' nvemu-rpc -s /run/nvemu/nvemu.sock nvme_subsystem_list | grep -q nqn.2014-08.io.nvemu:default"
check "nvemu-perf writes and verifies 4 KiB blocks over NVMe/TCP to 127.0.0.1:4420" \
	chroot "$ROOT" nvemu-perf -r 'trtype:tcp traddr:127.0.0.1 trsvcid:4420 subnqn:nqn.2014-08.io.nvemu:default' \
	-w randwrite -q 4 -N 2000 --verify --quiet
check "/metrics on 127.0.0.1:9469 counts those writes" python3 -c '
import urllib.request, re
b = urllib.request.urlopen("http://127.0.0.1:9469/metrics", timeout=5).read().decode()
assert re.search(r"nvemu_temperature_kelvin\{nqn=\"nqn.2014-08.io.nvemu:default\"\} \d+", b), b[:500]
assert "process_resident_memory_bytes" in b'
kill "$DPID"
wait "$DPID"
rc=$?
DPID=
[ "$rc" -eq 0 ] && ok "nvemud stops cleanly on SIGTERM" || { nok "nvemud exit status $rc"; diag "$(tail "$T/daemon.log")"; }
rm -rf "$ROOT/run/nvemu"

# --- purge
if chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive dpkg --purge nvemu libnvemu-dev libnvemu0 >"$T/purge.log" 2>&1; then
	ok "dpkg --purge nvemu libnvemu-dev libnvemu0"
else
	nok "dpkg --purge"
	diag "$(cat "$T/purge.log")"
fi
chroot "$ROOT" sh -c 'DEBIAN_FRONTEND=noninteractive apt-get autoremove --purge -y -qq' >/dev/null 2>&1
find "$ROOT" -xdev \( -path "$ROOT/proc" -o -path "$ROOT/dev" -o -path "$ROOT/var/lib/dpkg" -o \
	-path "$ROOT/var/cache" -o -path "$ROOT/var/log" -o -path "$ROOT/var/lib/apt" -o -path "$ROOT/tmp" \) \
	-prune -o -print | sed "s|^$ROOT||" | sort >"$T/after"
# Not the packages' own: the backups of the user and group files that dependencies'
# maintainer scripts (adding and removing system groups) leave, as on any Debian system.
left=$(comm -13 "$T/before" "$T/after" | grep -v -e '^/etc/resolv.conf$' -e '^/run/' -e '^/etc/ld.so.cache$' \
	-e '^/etc/\(passwd\|group\|shadow\|gshadow\|subuid\|subgid\)-$' || true)
if [ -z "$left" ]; then
	ok "nothing of the packages is left behind"
else
	nok "files left behind after purge"
	diag "$left"
fi

# --- systemd as init in a QEMU guest, the kernel NVMe/TCP host against the packaged nvemud
NVEMU_SYSTEMD_GUEST_CACHE=${NVEMU_SYSTEMD_GUEST_CACHE:-$CACHE/systemd-guest} \
	"$SRC/tests/package/systemd-guest.sh" "$T" >"$T/guest.tap" 2>&1
while IFS= read -r line; do
	case $line in
	"ok "*) ok "${line#* - }" ;;
	"not ok "*) nok "${line#* - }" ;;
	"#"*) echo "$line" ;;
	esac
done <"$T/guest.tap"
grep -q "^not ok\|^ok" "$T/guest.tap" || { nok "systemd-guest.sh ran"; diag "$(tail -20 "$T/guest.tap")"; }
finish
