#!/bin/sh
# The packaged nvemud under systemd as init, in a QEMU guest: a bookworm root
# (debootstrap with systemd, nvme-cli and kmod; cached) with the three .debs
# installed by dpkg, booted as the guest's initramfs with systemd as PID 1
# (rdinit=/lib/systemd/systemd) on bookworm's kernel. Inside, a test unit
# checks: nvemud.service active (Type=notify), nvemud.socket holding the RPC
# socket, the kernel NVMe/TCP host's `nvme discover` and `nvme connect`
# against the packaged configuration, `systemctl reload nvemud` adding a
# namespace while the host stays connected, the journal's NVEMU_* fields
# (`journalctl -u nvemud -o json`), and an RPC call that starts a stopped
# nvemud through the socket. TAP output.
#
# usage: systemd-guest.sh DEB_DIR   (nvemu_*.deb, libnvemu0_*.deb, libnvemu-dev_*.deb)
# Cache: $NVEMU_SYSTEMD_GUEST_CACHE (default $NVEMU_PKG_CACHE/systemd-guest).
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DEBS=$(cd "${1:?usage: systemd-guest.sh DEB_DIR}" && pwd)
CACHE=${NVEMU_SYSTEMD_GUEST_CACHE:-${NVEMU_PKG_CACHE:-/var/tmp/nvemu-pkg-cache}/systemd-guest}
TIMEOUT=${NVEMU_GUEST_TIMEOUT:-300}
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
diag() { printf '%s\n' "$@" | sed 's/^/# /' | head -60; }
finish() { echo "1..$n"; [ "$fails" -eq 0 ]; exit $?; }

for t in qemu-system-x86_64 debootstrap cpio apt-get apt-cache dpkg depmod modprobe; do
	command -v $t >/dev/null 2>&1 || { nok "$t not installed (tools/install-deps.sh installs it)"; finish; }
done
[ "$(id -u)" = 0 ] || { nok "needs root (debootstrap, chroot)"; finish; }
ls "$DEBS"/nvemu_*.deb "$DEBS"/libnvemu0_*.deb >/dev/null 2>&1 || { nok "no .debs in $DEBS"; finish; }

# The root's packages: systemd as init, the kernel host's tools, and whatever the
# .debs depend on (read from them, so a new dependency rebuilds the cached root; the
# guest has no network to fetch it).
deps=$(for d in "$DEBS"/nvemu_*.deb "$DEBS"/libnvemu0_*.deb; do dpkg-deb -f "$d" Depends; done |
	tr ',' '\n' | sed 's/|.*//; s/(.*//; s/:any//; s/ //g' | grep -v -e '^$' -e '^nvemu$' -e '^libnvemu0$' |
	sort -u | paste -sd, -)
PKGS=systemd,systemd-sysv,nvme-cli,kmod${deps:+,$deps}
mkdir -p "$CACHE"
if [ ! -f "$CACHE/root.tar" ] || [ "$(cat "$CACHE/root.pkgs" 2>/dev/null)" != "$PKGS" ]; then
	MIRROR=$("$SRC/tools/debian-mirror.sh") || { nok "no Debian mirror in the apt configuration"; finish; }
	rm -rf "$CACHE/tmp" "$CACHE/root.tar"
	start=$(date +%s)
	if debootstrap --variant=minbase --include=$PKGS bookworm "$CACHE/tmp" "$MIRROR" \
		>"$CACHE/debootstrap.log" 2>&1; then
		# What a booted test needs nothing of: documentation, locales, apt's lists.
		rm -rf "$CACHE/tmp/usr/share/doc" "$CACHE/tmp/usr/share/man" "$CACHE/tmp/usr/share/locale" \
			"$CACHE/tmp/var/cache/apt"/*.bin "$CACHE/tmp/var/lib/apt/lists"/*_Packages \
			"$CACHE/tmp/var/cache/apt/archives"/*.deb "$CACHE/tmp/usr/lib/x86_64-linux-gnu/gconv"
		tar -C "$CACHE/tmp" -cf "$CACHE/root.tar" . && echo "$PKGS" >"$CACHE/root.pkgs"
		ok "debootstrap bookworm with systemd and nvme-cli ($(($(date +%s) - start)) s, cached)"
	else
		nok "debootstrap"
		diag "$(tail -20 "$CACHE/debootstrap.log")"
		finish
	fi
	rm -rf "$CACHE/tmp"
fi
# bookworm's kernel and the modules of the NVMe/TCP host (cached).
if [ ! -s "$CACHE/vmlinuz" ] || [ ! -d "$CACHE/modules" ]; then
	rm -rf "$CACHE/kwork" "$CACHE/modules"
	mkdir -p "$CACHE/kwork/dl" "$CACHE/kwork/ext"
	kpkg=$(apt-cache depends linux-image-amd64 |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n 1)
	kver=${kpkg#linux-image-}
	if [ -n "$kpkg" ] && (cd "$CACHE/kwork/dl" && apt-get download "$kpkg") >"$CACHE/kernel.log" 2>&1 &&
		dpkg -x "$CACHE"/kwork/dl/*.deb "$CACHE/kwork/ext"; then
		depmod -b "$CACHE/kwork/ext" "$kver"
		for m in nvme-tcp crc32c_generic; do
			modprobe -d "$CACHE/kwork/ext" -S "$kver" --show-depends "$m" 2>/dev/null |
				awk '$1 == "insmod" { print $2 }' | while read -r ko; do
				rel=${ko#"$CACHE/kwork/ext"}
				mkdir -p "$CACHE/modules$(dirname "$rel")"
				cp "$ko" "$CACHE/modules$rel"
			done
		done
		cp "$CACHE/kwork/ext/lib/modules/$kver/modules.order" "$CACHE/kwork/ext/lib/modules/$kver/modules.builtin"* \
			"$CACHE/modules/lib/modules/$kver/" 2>/dev/null
		cp "$CACHE/kwork/ext/boot/vmlinuz-$kver" "$CACHE/vmlinuz"
		echo "$kver" >"$CACHE/kver"
		ok "kernel $kver and its NVMe/TCP host modules (cached)"
	else
		nok "kernel package"
		diag "$(tail -10 "$CACHE/kernel.log")"
		finish
	fi
	rm -rf "$CACHE/kwork"
fi
kver=$(cat "$CACHE/kver")

T=$(mktemp -d /var/tmp/nvemu-sdguest.XXXXXX)
trap '[ -n "${NVEMU_KEEP:-}" ] || rm -rf "$T"' EXIT
G=$T/root
mkdir -p "$G"
tar -C "$G" -xf "$CACHE/root.tar"
# /lib is /usr/lib (merged /usr).
mkdir -p "$G/usr/lib/modules"
cp -a "$CACHE/modules/lib/modules/$kver" "$G/usr/lib/modules/"
depmod -b "$G" "$kver"
mkdir -p "$G/tmp/debs"
cp "$DEBS"/nvemu_*.deb "$DEBS"/libnvemu0_*.deb "$G/tmp/debs/"
# Without a running systemd the maintainer scripts enable the units (symlinks) and start nothing.
if chroot "$G" sh -c 'dpkg -i /tmp/debs/*.deb' >"$T/dpkg.log" 2>&1; then
	ok "dpkg -i nvemu libnvemu0 into the systemd root"
else
	nok "dpkg -i"
	diag "$(tail -20 "$T/dpkg.log")"
	finish
fi
rm -rf "$G/tmp/debs"

# The configuration a reload moves to: the packaged one with a third namespace.
python3 - "$G/etc/nvemu/nvemu.json" "$G/test/nvemu-reload.json" <<'EOF' || { nok "reload configuration"; finish; }
import json, os, sys
c = json.load(open(sys.argv[1]))
calls = c["calls"]
calls.insert(2, {"method": "bdev_malloc_create",
                 "params": {"name": "Malloc2", "num_blocks": 4096, "block_size": 512}})
calls.append({"method": "nvme_namespace_create",
              "params": {"nqn": "nqn.2014-08.io.nvemu:default", "bdev_name": "Malloc2", "nsid": 3}})
os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
json.dump(c, open(sys.argv[2], "w"), indent=1)
EOF

# The test, a unit of its own once the system is up; results on ttyS1, the status on ttyS2.
cat >"$G/test/script.sh" <<'EOF'
#!/bin/sh
exec >/dev/ttyS1 2>&1
NQN=nqn.2014-08.io.nvemu:default
RPC="nvemu-rpc -t 30 -s /run/nvemu/nvemu.sock"
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; [ -s /tmp/out ] && tail -n 20 /tmp/out | sed 's/^/# /'; }
t() { d=$1; shift; if timeout 60 "$@" >/tmp/out 2>&1; then ok "$d"; else nok "$d"; fi; }
# waitfor SECONDS 'SHELL CONDITION'
waitfor() { i=0; while [ $i -lt $(($1 * 10)) ]; do timeout 10 sh -c "$2" >/dev/null 2>&1 && return 0; sleep 0.1; i=$((i + 1)); done; return 1; }
status() { systemctl show -p StatusText --value nvemud; }
# The kernel host's controller of $NQN, and the block device of namespace $1.
ctrl() { for c in /sys/class/nvme/nvme*; do grep -qx $NQN $c/subsysnqn 2>/dev/null && [ -e $c/cntlid ] && echo ${c##*/} && return 0; done; return 1; }
nsdev() { for b in /sys/block/nvme*; do case ${b##*/} in nvme*c*) continue ;; esac; [ "$(cat $b/nsid 2>/dev/null)" = "$1" ] && echo /dev/${b##*/} && return 0; done; return 1; }
export NQN

waitfor 60 'systemctl is-active nvemud' && ok "systemctl is-active nvemud" ||
	{ nok "systemctl is-active nvemud"; systemctl status nvemud --no-pager | sed 's/^/# /'; journalctl -b --no-pager | tail -n 40 | sed 's/^/# /'; }
t "the package enabled nvemud.service and nvemud.socket" sh -c "systemctl is-enabled nvemud.service && systemctl is-enabled nvemud.socket"
t "nvemud.socket is active" systemctl is-active nvemud.socket
t "Type=notify: READY=1 reached systemd (StatusText=serving)" sh -c "systemctl show -p StatusText --value nvemud | grep -qx serving"
t "nvemud took the RPC socket from systemd (socket activation)" sh -c "journalctl -u nvemud --no-pager | grep -q 'listening on /run/nvemu/nvemu.sock (socket activation)'"
t "nvemud runs as a transient unprivileged user" sh -c "[ \$(stat -c %u /proc/\$(systemctl show -p MainPID --value nvemud)) -ne 0 ]"
modprobe nvme-tcp
t "nvme discover -t tcp -a 127.0.0.1 -s 4420 lists the packaged subsystem" sh -c "nvme discover -t tcp -a 127.0.0.1 -s 4420 | grep -q 'subnqn: *$NQN'"
t "nvme connect to the packaged subsystem" nvme connect -t tcp -a 127.0.0.1 -s 4420 -n $NQN
waitfor 15 '. /test/fns.sh; nsdev 1' && ok "the host sees namespace 1" || nok "the host sees namespace 1"
c=$(ctrl)
cntlid=$(cat /sys/class/nvme/$c/cntlid 2>/dev/null)
d1=$(nsdev 1)
t "I/O through the kernel host ($d1)" sh -c "dd if=/dev/urandom of=/tmp/blk bs=4096 count=4 2>/dev/null && dd if=/tmp/blk of=$d1 bs=4096 count=4 oflag=direct 2>/dev/null && dd if=$d1 of=/tmp/back bs=4096 count=4 iflag=direct 2>/dev/null && cmp /tmp/blk /tmp/back"
t "journal: the host's Connect with NVEMU_HOSTNQN, NVEMU_SUBNQN, NVEMU_CNTLID, NVEMU_QID" sh -c "journalctl -u nvemud -o json --no-pager | grep 'connected to' | grep '\"NVEMU_HOSTNQN\":\"nqn.2014-08.org.nvmexpress:' | grep '\"NVEMU_SUBNQN\":\"$NQN\"' | grep '\"NVEMU_CNTLID\":\"$cntlid\"' | grep -q '\"NVEMU_QID\":\"0\"'"

cp /test/nvemu-reload.json /etc/nvemu/nvemu.json
t "systemctl reload nvemud" systemctl reload nvemud
waitfor 20 "systemctl show -p StatusText --value nvemud | grep -q '2 added'" &&
	ok "StatusText after the reload: $(status)" || { nok "StatusText after the reload"; echo "# $(status)"; }
waitfor 15 '. /test/fns.sh; nsdev 3' && ok "the host sees namespace 3 appear (without reconnecting)" || nok "the host sees namespace 3 appear"
t "the host keeps its controller through the reload" sh -c "[ \"\$(cat /sys/class/nvme/$c/state)\" = live ] && [ \"\$(cat /sys/class/nvme/$c/cntlid)\" = '$cntlid' ]"
t "journal: the reload's changes" sh -c "journalctl -u nvemud --no-pager | grep -q 'reload: added namespace $NQN 3'"
nvme disconnect -n $NQN >/dev/null 2>&1

t "systemctl stop nvemud (the socket stays)" sh -c "systemctl stop nvemud && systemctl is-active nvemud.socket"
t "an RPC call starts nvemud through its socket" sh -c "$RPC nvme_subsystem_list | grep -q $NQN"
t "nvemud is active again" systemctl is-active nvemud
echo "1..$n"
[ $fails -eq 0 ]
rc=$?
tag=$(sed -n 's/.*nvemu\.tag=\([^ ]*\).*/\1/p' /proc/cmdline)
echo "NVEMU-GUEST-STATUS $tag $rc" >/dev/ttyS2
sync
systemctl --force --force poweroff
EOF
chmod +x "$G/test/script.sh"
sed -n '/^# The kernel host/,/^nsdev/p' "$G/test/script.sh" >"$G/test/fns.sh"
echo 'NQN=nqn.2014-08.io.nvemu:default' >>"$G/test/fns.sh"
cat >"$G/etc/systemd/system/nvemu-guest-test.service" <<'EOF'
[Unit]
Description=nvemu systemd guest test
After=multi-user.target nvemud.service

[Service]
Type=oneshot
ExecStart=/test/script.sh

[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$G/etc/systemd/system/multi-user.target.wants"
ln -s /etc/systemd/system/nvemu-guest-test.service "$G/etc/systemd/system/multi-user.target.wants/"
# The guest's initramfs is its root: the smaller, the faster it boots under TCG.
rm -rf "$G/var/cache/apt/archives"/*.deb "$G/usr/lib/x86_64-linux-gnu/gconv" "$G/usr/share/doc" \
	"$G/usr/share/man" "$G/usr/share/locale"
# Nothing that is not needed here: consoles to log in on, first-boot questions, timers,
# nvme-cli's autoconnect, modules for devices the guest has not.
for u in serial-getty@ttyS0.service getty@tty1.service systemd-firstboot.service \
	nvmefc-boot-connections.service nvmf-autoconnect.service e2scrub_reap.service uuidd.socket \
	apt-daily-upgrade.timer apt-daily.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
	systemd-pstore.service modprobe@dm_mod.service modprobe@efi_pstore.service \
	modprobe@fuse.service modprobe@loop.service modprobe@drm.service systemd-random-seed.service; do
	ln -sf /dev/null "$G/etc/systemd/system/$u"
done
: >"$G/etc/machine-id"
echo nvemu-guest >"$G/etc/hostname"

(cd "$G" && find . | cpio -o -H newc --quiet) >"$T/initrd"
tag=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
: >"$T/console.log"
: >"$T/out.log"
: >"$T/status.log"
start=$(date +%s)
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -nodefaults -nic none -display none \
	-machine q35 -cpu max -smp 2 -m 2048 -no-reboot \
	-kernel "$CACHE/vmlinuz" -initrd "$T/initrd" \
	-append "console=ttyS0 rdinit=/lib/systemd/systemd panic=-1 systemd.show_status=0 nvemu.tag=$tag" \
	-serial "file:$T/console.log" -serial "file:$T/out.log" -serial "file:$T/status.log" \
	>"$T/qemu.log" 2>&1
qrc=$?
status=$(sed -n "s/^NVEMU-GUEST-STATUS $tag \([0-9]*\).*/\1/p" "$T/status.log" | tr -d '\r' | head -n 1)
# The guest's checks, renumbered into this plan.
tr -d '\r' <"$T/out.log" | while IFS= read -r line; do
	case $line in
	"ok "*) echo "ok - guest: ${line#* - }" ;;
	"not ok "*) echo "not ok - guest: ${line#* - }" ;;
	"#"*) echo "$line" ;;
	esac
done >"$T/guest.tap"
while IFS= read -r line; do
	case $line in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*) nok "${line#not ok - }" ;;
	*) echo "$line" ;;
	esac
done <"$T/guest.tap"
if [ "$status" = 0 ]; then
	ok "systemd guest run: every check passed ($(($(date +%s) - start)) s)"
else
	nok "systemd guest run (status '${status}', qemu exit $qrc, $(($(date +%s) - start)) s)"
	diag "$(tail -n 40 "$T/console.log")"
	diag "$(cat "$T/qemu.log")"
fi
finish
