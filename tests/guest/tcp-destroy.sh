#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (tests/guest/run-guest.sh): the kernel's NVMe/TCP
# host under fio load while nvemu-rpc destroys what it is using - a
# namespace, a controller, then the whole subsystem (force). nvemud must stay
# up and answer RPC, the host must see I/O errors or the namespace go away
# (never hang, never read stale or corrupt data: fio verifies what is still
# there), and a namespace re-created in place must work and read as new.
# TAP output, one line per check; exit status 1 if any check failed.
set -u
NQN=nqn.2014-08.io.nvemu:default
HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:6e7a1c2b-8d3e-4f50-9a61-7b8c9d0e1f23
HOSTID=6e7a1c2b-8d3e-4f50-9a61-7b8c9d0e1f23
ADDR="-t tcp -a 127.0.0.1 -s 4420"
LOG=/tmp/nvemud.log
OUT=/tmp/out
n=0
failed=0

diag() { sed 's/^/# /' "$@"; }
T0=$(date +%s)
el() { echo "[$(($(date +%s) - T0))s]"; }
ok() { n=$((n + 1)); echo "ok $n - $1 $(el)"; }
nok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1 $(el)"
	[ -s $OUT ] && tail -n 15 $OUT | diag
}
# t DESC CMD...: one check, the command's output in $OUT.
t() {
	_d=$1
	shift
	if "$@" >$OUT 2>&1; then ok "$_d"; else nok "$_d"; fi
}
finish() {
	if [ $failed -ne 0 ]; then
		echo "# nvemud log:"
		tail -n 40 $LOG | diag
		echo "# kernel:"
		dmesg | grep -i nvme | tail -n 20 | diag
	fi
	echo "1..$n"
	[ $failed -eq 0 ]
	exit $?
}
bail() {
	nok "$*"
	finish
}
rpc() { nvemu-rpc -t 20 "$@"; }

# The block device of NSID $1, empty if none.
ns_dev() {
	for _b in /sys/block/nvme*; do
		case ${_b##*/} in nvme*c*) continue ;; esac
		[ "$(cat "$_b/nsid" 2>/dev/null)" = "$1" ] && [ -b "/dev/${_b##*/}" ] &&
			echo "/dev/${_b##*/}" && return 0
	done
	return 1
}
# wait_ns NSID [gone]: up to 15 s for the namespace to appear (or to disappear).
wait_ns() {
	for _i in $(seq 150); do
		if [ "${2:-}" = gone ]; then ns_dev "$1" >/dev/null || return 0
		else ns_dev "$1" >/dev/null && return 0
		fi
		sleep 0.1
	done
	return 1
}
ctrl_live() {
	for _c in /sys/class/nvme/nvme*; do
		[ -e "$_c/subsysnqn" ] && grep -qx "$NQN" "$_c/subsysnqn" &&
			[ "$(cat "$_c/state")" = live ] && return 0
	done
	return 1
}
# wait_pid PID SECONDS: 0 once PID has exited (status in WAIT_RC), 1 if still running.
wait_pid() {
	for _i in $(seq $(($2 * 10))); do
		if ! kill -0 "$1" 2>/dev/null; then
			wait "$1"
			WAIT_RC=$?
			return 0
		fi
		sleep 0.1
	done
	return 1
}
alive() { kill -0 $NVEMUD_PID 2>/dev/null && rpc rpc_get_methods >/dev/null 2>&1; }

# fio on DEV: MODE write (write then verify), verify (check the last write),
# load (random writes for up to 30 s, errors expected, no verify).
fio_run() {
	case $2 in
	write) _m="--rw=randwrite --do_verify=1 --verify=crc32c --verify_fatal=1" ;;
	verify) _m="--rw=randwrite --verify_only=1 --verify=crc32c --verify_fatal=1" ;;
	load) _m="--rw=randrw --bs=128k --iodepth=32 --numjobs=2 --time_based --runtime=30" ;;
	esac
	# 128 KiB writes at depth 32 (load) keep commands in flight in the target
	# (waiting for their data, or in the file bdev's io_uring) at any moment.
	fio --ioengine=libaio --direct=1 --iodepth=16 --bs=4k --size=4M --name=j \
		--filename="$1" $_m
}

# ---- nvemud (default configuration: NSIDs 1 and 2, PCIe controller NVMeCtrl1)
nvemud >>$LOG 2>&1 &
NVEMUD_PID=$!
for _i in $(seq 100); do
	alive && break
	sleep 0.1
done
alive || bail "nvemud starts"
ok "nvemud starts"
truncate -s 8M /tmp/victim.img
t "RAM namespace 3 (kept) and file namespace 4 (destroyed under load) created over RPC" sh -c "
	nvemu-rpc bdev_malloc_create -b Keep --num_blocks 16384 &&
	nvemu-rpc bdev_file_create -b Victim --filename /tmp/victim.img --direct false &&
	nvemu-rpc nvme_namespace_create --nqn $NQN -b Keep -n 3 &&
	nvemu-rpc nvme_namespace_create --nqn $NQN -b Victim -n 4"
# A short controller-loss timeout: when the subsystem goes, the host gives up
# after 3 s and fails the I/O instead of retrying for 10 minutes.
nvme connect $ADDR -n $NQN --hostnqn="$HOSTNQN" --hostid="$HOSTID" \
	--ctrl-loss-tmo=3 --reconnect-delay=1 >$OUT 2>&1 && wait_ns 3 && wait_ns 4 ||
	bail "nvme connect, namespaces 3 and 4 appear"
ok "nvme connect, namespaces 3 and 4 appear"
KEEP=$(ns_dev 3)
VICTIM=$(ns_dev 4)
t "fio writes and verifies the kept namespace 3 ($KEEP)" fio_run "$KEEP" write

# ---- namespace destroyed under load
fio_run "$VICTIM" load >/tmp/fio-victim.log 2>&1 &
VFIO=$!
sleep 2
kill -0 $VFIO 2>/dev/null || bail "fio load on namespace 4 is running"
fio_run "$KEEP" verify >/tmp/fio-keep.log 2>&1 &
KFIO=$!
t "nvme_namespace_destroy of namespace 4 under fio load returns" rpc nvme_namespace_destroy \
	--nqn $NQN -n 4
t "nvemud alive and answering RPC after the destroy" alive
t "namespace 4 disappears from the host (namespace-change event)" wait_ns 4 gone
if wait_pid $VFIO 40; then
	ok "fio on the destroyed namespace ends (exit $WAIT_RC) instead of hanging"
else
	nok "fio on the destroyed namespace ends instead of hanging"
	kill -9 $VFIO 2>/dev/null
fi
if [ "${WAIT_RC:-0}" -ne 0 ] || grep -qi "error" /tmp/fio-victim.log; then
	ok "the host saw I/O errors on the destroyed namespace"
	grep -i -m 3 "error" /tmp/fio-victim.log | diag
else
	nok "the host saw I/O errors on the destroyed namespace"
	tail -n 10 /tmp/fio-victim.log | diag
fi
if wait_pid $KFIO 40 && [ "$WAIT_RC" -eq 0 ]; then
	ok "namespace 3 verified intact while namespace 4 was destroyed"
else
	nok "namespace 3 verified intact while namespace 4 was destroyed"
	tail -n 10 /tmp/fio-keep.log | diag
fi

# ---- re-created in place: works and reads as new, never the old data
rpc bdev_malloc_create -b Fresh --num_blocks 16384 >$OUT 2>&1 &&
	rpc nvme_namespace_create --nqn $NQN -b Fresh -n 4 >>$OUT 2>&1
t "namespace 4 re-created on a new bdev appears on the host" wait_ns 4
VICTIM=$(ns_dev 4)
zero_bytes() { [ "$(dd if="$1" bs=4096 count=1024 iflag=direct 2>/dev/null | tr -d '\000' | wc -c)" -eq 0 ]; }
t "the re-created namespace reads zeros, not the destroyed one's data" zero_bytes "$VICTIM"
t "fio writes and verifies the re-created namespace 4" fio_run "$VICTIM" write

# ---- a controller destroyed while the host's controller has I/O in flight
fio_run "$KEEP" verify >/tmp/fio-keep.log 2>&1 &
KFIO=$!
t "nvme_controller_destroy NVMeCtrl1 (force) while the host verifies namespace 3" \
	rpc nvme_controller_destroy --ctrl NVMeCtrl1 --force true
t "nvemud alive and answering RPC after the controller destroy" alive
if wait_pid $KFIO 40 && [ "$WAIT_RC" -eq 0 ]; then
	ok "namespace 3 still verifies across the other controller's destroy"
else
	nok "namespace 3 still verifies across the other controller's destroy"
	tail -n 10 /tmp/fio-keep.log | diag
fi

# ---- the whole subsystem destroyed (force) under load
fio_run "$KEEP" load >/tmp/fio-keep.log 2>&1 &
KFIO=$!
fio_run "$VICTIM" load >/tmp/fio-victim.log 2>&1 &
VFIO=$!
sleep 2
t "nvme_subsystem_destroy --force under fio load on two namespaces returns" \
	rpc nvme_subsystem_destroy --nqn $NQN --force true
t "nvemud alive and answering RPC after the subsystem destroy" alive
t "the subsystem is gone from nvme_subsystem_list" sh -c \
	"! nvemu-rpc nvme_subsystem_list | grep -q '\"$NQN\"'"
for p in $KFIO $VFIO; do
	if wait_pid $p 40; then
		ok "fio ends after the subsystem destroy (exit $WAIT_RC), no hang"
	else
		nok "fio ends after the subsystem destroy, no hang"
		kill -9 $p 2>/dev/null
	fi
done
not_live() {
	for _i in $(seq 150); do
		ctrl_live || return 0
		sleep 0.1
	done
	return 1
}
t "the host's controller is no longer live" not_live
nvme disconnect -n $NQN >/dev/null 2>&1

# A sanitized nvemud (run-guest.sh with build-asan) reports into its log.
if grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" $LOG; then
	nok "no sanitizer report in the nvemud log"
	grep -A 12 "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" $LOG | head -n 40 |
		diag
else
	ok "no sanitizer report in the nvemud log"
fi
kill -TERM $NVEMUD_PID
if wait_pid $NVEMUD_PID 15; then
	t "nvemud exits 0 on SIGTERM afterwards (exit $WAIT_RC)" [ "$WAIT_RC" -eq 0 ]
else
	nok "nvemud exits on SIGTERM afterwards"
	kill -KILL $NVEMUD_PID
fi
finish
