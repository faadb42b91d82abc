#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside a guest booted from bookworm-backports' kernel (run-guest.sh with
# NVEMU_GUEST_KERNEL=bookworm-backports): the Linux 6.12 host connects to a
# secure_channel listener of nvemud over TLS 1.3 with a PSK. tlshd (the
# kernel's TLS handshake agent), keyctl and nvme-cli 2.13 come from trixie
# (/usr/local/bin wrappers): `nvme check-tls-key --insert` puts the retained
# PSK in the kernel's .nvme keyring, `nvme connect --tls` connects, fio
# verifies I/O; a plain connect to the secure listener and a host whose PSK
# differs are refused.
. "$(dirname "$0")/lib.sh"
TNQN=nqn.2024-01.io.nvemu:tls
TADDR="-t tcp -a 127.0.0.1 -s 4422"
KDIR=/tmp/keys
CTRL=
DEV=

ctrl_of() {
	for _c in /sys/class/nvme/nvme*; do
		[ -e "$_c/subsysnqn" ] && grep -qx "$TNQN" "$_c/subsysnqn" &&
			[ "$(cat "$_c/state")" = live ] && echo "${_c##*/}" && return 0
	done
	return 1
}
ns_of() {
	for _n in /sys/class/nvme/$1/$1n* /sys/block/nvme*; do
		[ -e "$_n" ] || continue
		case ${_n##*/} in nvme*c*) continue ;; esac
		[ -b "/dev/${_n##*/}" ] && echo "/dev/${_n##*/}" && return 0
	done
	return 1
}
wait_ctrl() {
	for _i in $(seq 150); do
		CTRL=$(ctrl_of) && DEV=$(ns_of "$CTRL") && return 0
		sleep 0.1
	done
	return 1
}
no_ctrl() { ! ctrl_of >/dev/null; }
# in_keyring: the .nvme keyring holds a PSK with the identity the host offers.
in_keyring() { keyctl show %:.nvme 2>/dev/null | grep -q "psk: NVMe0R01 $HOSTNQN $TNQN"; }
fio_verify() {
	fio --ioengine=libaio --direct=1 --rw=randwrite --iodepth=16 --numjobs=2 --size=2M \
		--offset_increment=2M --verify=crc32c --verify_fatal=1 --do_verify=1 \
		--group_reporting --filename="$1" --name=tls --bs=4k --offset=0
}

t "trixie's tlshd, keyctl and nvme-cli run in the guest" sh -c \
	'tlshd -h 2>&1 | grep -q usage && nvme-tls version | grep -q "nvme version 2" && keyctl --version'
mkdir -p $KDIR
PSK=$(nvme-tls gen-tls-key -m 1 2>/dev/null | tail -n 1)
OTHERPSK=$(nvme-tls gen-tls-key -m 1 2>/dev/null | tail -n 1)
case $PSK in NVMeTLSkey-1:01:*) ok "nvme gen-tls-key made a PSK" ;; *) bail "nvme gen-tls-key ($PSK)" ;; esac
(umask 077 && echo "$PSK" >$KDIR/psk0)

cat >/etc/tlshd.conf <<CONF
[debug]
loglevel=1
tls=0
nl=0
[authenticate]
keyrings=.nvme
[authenticate.client]
[authenticate.server]
CONF
tlshd -c /etc/tlshd.conf -s >/tmp/tlshd.log 2>&1 &
TLSHD=$!
sleep 1
t "tlshd runs" kill -0 $TLSHD

start_nvemud || bail "nvemud starts"
ok "nvemud starts"
t "subsystem $TNQN, RAM namespace, secure_channel listener 127.0.0.1:4422, host with --psk" sh -c "
	nvemu-rpc bdev_malloc_create -b Tls0 --num_blocks 32768 &&
	nvemu-rpc nvme_subsystem_create --nqn $TNQN &&
	nvemu-rpc nvme_namespace_create --nqn $TNQN -b Tls0 -n 1 &&
	nvemu-rpc nvmf_subsystem_allow_any_host --nqn $TNQN --allow_any_host false &&
	nvemu-rpc keyring_file_add_key -n psk0 -p $KDIR/psk0 &&
	nvemu-rpc nvmf_subsystem_add_host --nqn $TNQN --host $HOSTNQN --psk psk0 &&
	nvemu-rpc nvmf_subsystem_add_listener --nqn $TNQN -t tcp -a 127.0.0.1 --trsvcid 4422 \
		--secure_channel true"

nvme connect $TADDR -n $TNQN --hostnqn="$HOSTNQN" --hostid="$HOSTID" >$OUT 2>&1
rc=$?
sleep 1
t "a plain (non-TLS) connect to the secure_channel listener fails" [ $rc -ne 0 ]
t "  and leaves no controller" no_ctrl
tg "  nvemud refused it in the TLS handshake" "TLS handshake failed" $LOG

# The right PSK first.
nvme-tls check-tls-key --insert -n "$HOSTNQN" -c "$TNQN" -d "$PSK" -I 0 >$OUT 2>&1
t "the right PSK inserted into the .nvme keyring" in_keyring
# What libnvme derived, for the record (a test key made for this run).
echo "# configured $PSK"
keyctl link %:.nvme @s >/dev/null 2>&1
_kid=$(keyctl show %:.nvme 2>/dev/null | sed -n 's/^ *\([0-9][0-9]*\) .*psk: NVMe0R01.*/\1/p' | tail -n 1)
echo "# keyring psk $_kid $(keyctl pipe "$_kid" 2>&1 | od -An -tx1 | tr -d ' \n')"
nvme-tls connect $TADDR -n $TNQN --hostnqn="$HOSTNQN" --hostid="$HOSTID" --tls >$OUT 2>&1 &&
	wait_ctrl
t "connect --tls: controller $CTRL live, namespace $DEV" [ $? -eq 0 ]
tg "  nvemud logged the TLS 1.3 session" "TLS 1.3 with host $HOSTNQN" $LOG
t "fio verify over TLS" fio_verify "$DEV"
nvme disconnect -n $TNQN >/dev/null 2>&1
sleep 1
t "disconnect" no_ctrl

# Then another PSK under the same identity (libnvme revokes the old key).
nvme-tls check-tls-key --insert -n "$HOSTNQN" -c "$TNQN" -d "$OTHERPSK" -I 0 >$OUT 2>&1
t "a wrong PSK inserted into the .nvme keyring (identity NVMe0R01 <hostnqn> <subnqn>)" in_keyring
nvme-tls connect $TADDR -n $TNQN --hostnqn="$HOSTNQN" --hostid="$HOSTID" --tls >$OUT 2>&1
rc=$?
sleep 1
t "connect --tls with the wrong PSK fails" [ $rc -ne 0 ]
t "  and leaves no controller" no_ctrl
keyctl show %:.nvme 2>&1 | diag
echo "# tlshd:"
tail -n 10 /tmp/tlshd.log | diag
t "nvemud still answers" alive
stop_nvemud
t "nvemud stops cleanly" [ "$STOP_RC" = 0 ]
kill $TLSHD 2>/dev/null
check_sanitizer
finish
