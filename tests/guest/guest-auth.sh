#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside a guest booted from bookworm-backports' kernel (run-guest.sh with
# NVEMU_GUEST_KERNEL=bookworm-backports; its NVMe host has DH-HMAC-CHAP):
# the Linux host authenticates to nvemud with nvme-cli's --dhchap-secret,
# unidirectional and bidirectional (--dhchap-ctrl-secret), then fio verifies
# I/O; a wrong secret, no secret and a wrong controller secret are refused
# with no controller left; re-authentication through sysfs.
. "$(dirname "$0")/lib.sh"
ANQN=nqn.2024-01.io.nvemu:auth
AADDR="-t tcp -a 127.0.0.1 -s 4421"
BNQN=nqn.2014-08.org.nvmexpress:uuid:0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b
BID=0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b
KDIR=/tmp/keys
CTRL=
DEV=

echo "# kernel $(uname -r)"
t "the kernel's NVMe host has in-band authentication (6.x with nvme-auth)" \
	sh -c 'grep -q . /proc/version && [ "$(uname -r | cut -d. -f1)" -ge 6 ] &&
	       [ "$(uname -r | cut -d. -f2)" -ge 7 ]'

# ctrl_of HOSTNQN: the live controller of $ANQN that host connected.
ctrl_of() {
	for _c in /sys/class/nvme/nvme*; do
		[ -e "$_c/subsysnqn" ] && grep -qx "$ANQN" "$_c/subsysnqn" &&
			grep -qx "$1" "$_c/hostnqn" && [ "$(cat "$_c/state")" = live ] &&
			echo "${_c##*/}" && return 0
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
# wait_ctrl HOSTNQN: up to 15 s for a live controller and its namespace (CTRL, DEV set).
wait_ctrl() {
	for _i in $(seq 150); do
		CTRL=$(ctrl_of "$1") && DEV=$(ns_of "$CTRL") && return 0
		sleep 0.1
	done
	return 1
}
no_ctrl() {
	for _c in /sys/class/nvme/nvme*; do
		[ -e "$_c/subsysnqn" ] && grep -qx "$ANQN" "$_c/subsysnqn" && return 1
	done
	return 0
}
disconnect_all() {
	nvme disconnect -n $ANQN >/dev/null 2>&1
	for _i in $(seq 100); do
		no_ctrl && return 0
		sleep 0.1
	done
	return 1
}
fio_verify() {
	fio --ioengine=libaio --direct=1 --rw=randwrite --iodepth=16 --numjobs=2 --size=2M \
		--offset_increment=2M --verify=crc32c --verify_fatal=1 --do_verify=1 \
		--group_reporting --filename="$1" --name=auth --bs=4k --offset=0
}
# keyfile NAME SECRET: a 0600 file in $KDIR.
keyfile() { (umask 077 && echo "$2" >"$KDIR/$1") && echo "$KDIR/$1"; }

mkdir -p $KDIR
HKEY=$(nvme gen-dhchap-key -m 1 -n "$HOSTNQN")
BKEY=$(nvme gen-dhchap-key -m 2 -l 48 -n "$BNQN")
CKEY=$(nvme gen-dhchap-key -m 3 -l 64 -n "$ANQN")
WRONG=$(nvme gen-dhchap-key -m 1 -n "$HOSTNQN")
case $HKEY$BKEY$CKEY in DHHC-1:01:*DHHC-1:02:*DHHC-1:03:*) ok "nvme gen-dhchap-key made three secrets" ;;
*) bail "nvme gen-dhchap-key made three secrets ($HKEY $BKEY $CKEY)" ;; esac

start_nvemud || bail "nvemud starts"
ok "nvemud starts"
t "subsystem $ANQN on 127.0.0.1:4421 with a RAM namespace, no host allowed yet" sh -c "
	nvemu-rpc bdev_malloc_create -b Auth0 --num_blocks 32768 &&
	nvemu-rpc nvme_subsystem_create --nqn $ANQN &&
	nvemu-rpc nvme_namespace_create --nqn $ANQN -b Auth0 -n 1 &&
	nvemu-rpc nvmf_subsystem_add_listener --nqn $ANQN -t tcp -a 127.0.0.1 --trsvcid 4421 &&
	nvemu-rpc nvmf_subsystem_allow_any_host --nqn $ANQN --allow_any_host false"
t "keys added to the keyring from 0600 files" sh -c "
	nvemu-rpc keyring_file_add_key -n host0 -p $(keyfile host0 "$HKEY") &&
	nvemu-rpc keyring_file_add_key -n host1 -p $(keyfile host1 "$BKEY") &&
	nvemu-rpc keyring_file_add_key -n ctrl1 -p $(keyfile ctrl1 "$CKEY")"
t "hosts added: A with dhchap_key, B with dhchap_key and dhchap_ctrlr_key" sh -c "
	nvemu-rpc nvmf_subsystem_add_host --nqn $ANQN --host $HOSTNQN --dhchap_key host0 &&
	nvemu-rpc nvmf_subsystem_add_host --nqn $ANQN --host $BNQN --dhchap_key host1 \
		--dhchap_ctrlr_key ctrl1"

# ---- unidirectional; ffdhe8192's self-test fails in this TCG guest: the choice is limited
t "nvmf_set_config: SHA-256/384, null, ffdhe2048 and ffdhe3072" rpc nvmf_set_config \
	--dhchap_digests sha256,sha384 --dhchap_dhgroups null,ffdhe2048,ffdhe3072
nvme connect $AADDR -n $ANQN --hostnqn="$HOSTNQN" --hostid="$HOSTID" \
	--dhchap-secret="$HKEY" >$OUT 2>&1 && wait_ctrl "$HOSTNQN"
t "connect with the right secret: controller $CTRL live, namespace $DEV" [ $? -eq 0 ]
tg "nvemud logged the authenticated queues (sha384, ffdhe3072)" \
	"authenticated (DH-HMAC-CHAP sha384, ffdhe3072)" $LOG
t "fio verify on the authenticated connection" fio_verify "$DEV"
if [ -e "/sys/class/nvme/$CTRL/dhchap_secret" ]; then
	before=$(grep -c "queue 0 authenticated" $LOG)
	echo "$HKEY" >"/sys/class/nvme/$CTRL/dhchap_secret"
	for _i in $(seq 100); do
		[ "$(grep -c "queue 0 authenticated" $LOG)" -gt "$before" ] && break
		sleep 0.1
	done
	t "re-authentication (dhchap_secret written in sysfs) on the admin queue" \
		[ "$(grep -c "queue 0 authenticated" $LOG)" -gt "$before" ]
	t "I/O still works after re-authentication" fio_verify "$DEV"
else
	nok "the host has /sys/class/nvme/$CTRL/dhchap_secret"
fi
t "disconnect" disconnect_all

nvme connect $AADDR -n $ANQN --hostnqn="$HOSTNQN" --hostid="$HOSTID" \
	--dhchap-secret="$WRONG" >$OUT 2>&1
rc=$?
sleep 1
t "connect with a wrong secret fails" [ $rc -ne 0 ]
t "  and leaves no controller (no I/O possible)" no_ctrl
tg "  nvemud logged the authentication failure" "authentication failed" $LOG
dmesg | grep -i "nvme" | tail -n 5 | diag

nvme connect $AADDR -n $ANQN --hostnqn="$HOSTNQN" --hostid="$HOSTID" >$OUT 2>&1
rc=$?
sleep 1
t "connect without a secret fails (authentication required)" [ $rc -ne 0 ]
t "  and leaves no controller" no_ctrl
disconnect_all

# ---- bidirectional
t "nvmf_set_config: SHA-512, ffdhe2048" rpc nvmf_set_config --dhchap_digests sha512 \
	--dhchap_dhgroups ffdhe2048
nvme connect $AADDR -n $ANQN --hostnqn="$BNQN" --hostid="$BID" --dhchap-secret="$BKEY" \
	--dhchap-ctrl-secret="$CKEY" >$OUT 2>&1 && wait_ctrl "$BNQN"
t "bidirectional connect (host and controller secrets): controller $CTRL live" [ $? -eq 0 ]
tg "  authenticated with sha512, ffdhe2048" "authenticated (DH-HMAC-CHAP sha512, ffdhe2048)" $LOG
t "fio verify on the bidirectionally authenticated connection" fio_verify "$DEV"
t "disconnect" disconnect_all
nvme connect $AADDR -n $ANQN --hostnqn="$BNQN" --hostid="$BID" --dhchap-secret="$BKEY" \
	--dhchap-ctrl-secret="$(nvme gen-dhchap-key -m 3 -l 64 -n "$ANQN")" >$OUT 2>&1
rc=$?
sleep 1
t "a host expecting another controller secret refuses the controller" [ $rc -ne 0 ]
t "  and keeps no controller" no_ctrl
disconnect_all

t "nvemud still answers" alive
stop_nvemud
t "nvemud stops cleanly" [ "$STOP_RC" = 0 ]
check_sanitizer
finish
