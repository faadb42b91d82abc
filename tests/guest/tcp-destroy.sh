#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (tests/guest/run-guest.sh): the kernel's NVMe/TCP
# host under fio load while nvemu-rpc destroys what it is using - a
# namespace, a controller, then the whole subsystem (force). nvemud must stay
# up and answer RPC, the host must see I/O errors or the namespace go away
# (never hang, never read stale or corrupt data: fio verifies what is still
# there), and a namespace re-created in place must work and read as new.
# TAP output, one line per check; exit status 1 if any check failed.
. "$(dirname "$0")/lib.sh"

# The namespaces sit on delay bdevs over RAM: 20 ms per I/O normally. Just
# before each destroy their latency goes up to 5 s: every command the host
# submits from then on is held in the backend that long, and bdev_delay_list
# shows them in flight as the destroy starts. The destroy must answer only
# once they have completed (seconds later, past its 1 s abort deadline) and
# leave nothing in flight behind it. A destroy that freed the controller or
# namespace under them would answer at once, with the I/O still held, and
# their late completions would reach freed memory.
LAT_US=20000
HOLD_US=5000000

# delay_stat BDEV FIELD: a delay bdev's counter (inflight, completed).
delay_stat() {
	rpc bdev_delay_list -b "$1" | sed -n "s/.*\"$2\": \([0-9]*\).*/\1/p"
}
# hold BDEV...: raise the latency; 0.3 s later the 20 ms I/O is done and what is
# in flight was submitted after the raise, so it is held for about 5 s.
hold() {
	for _b; do
		rpc bdev_delay_update_latency -b "$_b" --latency_us $HOLD_US || return 1
	done
	sleep 0.3
}
# held BDEV...: each has I/O in flight in the backend now (fio may take a few
# seconds to start under TCG: up to 15 s for that).
held() {
	for _b; do
		for _i in $(seq 50); do
			_v=$(delay_stat "$_b" inflight)
			[ "${_v:-0}" -gt 0 ] && break
			sleep 0.3
		done
		echo "$_b: ${_v:-?} in flight"
		[ "${_v:-0}" -gt 0 ] || return 1
	done
}
# timed CMD...: run it; how long it took in DESTROY_CS (centiseconds).
now_cs() { tr -d . </proc/uptime | cut -d' ' -f1; }
timed() {
	_t0=$(now_cs)
	"$@"
	_rc=$?
	DESTROY_CS=$(($(now_cs) - _t0))
	return $_rc
}
# drained BDEV...: none has I/O in flight, and none completes any more in the next
# 2 s: nothing was left behind when the destroy answered.
drained() {
	_before=
	for _b; do
		_v=$(delay_stat "$_b" inflight)
		echo "$_b: ${_v:-?} in flight"
		[ "${_v:-1}" -eq 0 ] || return 1
		_before="$_before $(delay_stat "$_b" completed)"
	done
	sleep 2
	_after=
	for _b; do
		_after="$_after $(delay_stat "$_b" completed)"
	done
	echo "completed:$_before, 2 s later:$_after"
	[ "$_before" = "$_after" ]
}

# fio on DEV: MODE write (write then verify), verify (check the last write),
# load (random writes for up to 30 s, errors expected, no verify).
fio_run() {
	case $2 in
	write) _m="--rw=randwrite --do_verify=1 --verify=crc32c --verify_fatal=1" ;;
	verify) _m="--rw=randwrite --verify_only=1 --verify=crc32c --verify_fatal=1" ;;
	load) _m="--rw=randrw --bs=128k --iodepth=32 --numjobs=2 --time_based --runtime=30" ;;
	esac
	# 128 KiB writes at depth 32 (load) keep commands in flight in the target
	# (waiting for their data, or held by the delay bdev) at any moment.
	fio --ioengine=libaio --direct=1 --iodepth=16 --bs=4k --size=4M --name=j \
		--filename="$1" $_m
}

# ---- nvemud (default configuration: NSIDs 1 and 2, PCIe controller NVMeCtrl1)
start_nvemud || bail "nvemud starts"
ok "nvemud starts"
t "namespace 3 (kept) and 4 (destroyed under load) on 20 ms delay bdevs over RAM" sh -c "
	nvemu-rpc bdev_malloc_create -b KeepRam --num_blocks 16384 &&
	nvemu-rpc bdev_delay_create -b Keep --base_bdev_name KeepRam --latency_us $LAT_US &&
	nvemu-rpc bdev_malloc_create -b VictimRam --num_blocks 16384 &&
	nvemu-rpc bdev_delay_create -b Victim --base_bdev_name VictimRam --latency_us $LAT_US &&
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
t "namespace 4's I/O held 5 s in its backend" hold Victim
t "commands in flight in namespace 4's backend as it is destroyed" held Victim
t "nvme_namespace_destroy of namespace 4 under fio load returns" timed rpc \
	nvme_namespace_destroy --nqn $NQN -n 4
t "... only once the held I/O completed (after ${DESTROY_CS} cs, at least 200)" \
	[ "$DESTROY_CS" -ge 200 ]
t "no I/O left in namespace 4's backend once the destroy returned, none completing later" \
	drained Victim
tg "the destroy aborted them at its deadline and still waited for them" \
	"namespace 4: commands still in flight after" $LOG
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
rpc bdev_malloc_create -b FreshRam --num_blocks 16384 >$OUT 2>&1 &&
	rpc bdev_delay_create -b Fresh --base_bdev_name FreshRam --latency_us $LAT_US >>$OUT 2>&1 &&
	rpc nvme_namespace_create --nqn $NQN -b Fresh -n 4 >>$OUT 2>&1
t "namespace 4 re-created on a new bdev appears on the host" wait_ns 4
VICTIM=$(ns_dev 4)
zero_bytes() { [ "$(dd if="$1" bs=1M count=4 iflag=direct 2>/dev/null | tr -d '\000' | wc -c)" -eq 0 ]; }
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
t "both namespaces' I/O held 5 s in their backends" hold Keep Fresh
t "commands in flight in both backends as the subsystem is destroyed" held Keep Fresh
t "nvme_subsystem_destroy --force under fio load on two namespaces returns" \
	timed rpc nvme_subsystem_destroy --nqn $NQN --force true
t "... only once the held I/O completed (after ${DESTROY_CS} cs, at least 200)" \
	[ "$DESTROY_CS" -ge 200 ]
t "no I/O left in either backend once the destroy returned, none completing later" \
	drained Keep Fresh
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

t "the namespaces let go of their bdevs: delay bdevs and bases delete" sh -c "
	nvemu-rpc bdev_delay_delete -b Keep && nvemu-rpc bdev_delay_delete -b Fresh &&
	nvemu-rpc bdev_delay_delete -b Victim && nvemu-rpc bdev_delete -b KeepRam &&
	nvemu-rpc bdev_delete -b FreshRam && nvemu-rpc bdev_delete -b VictimRam"
check_sanitizer
stop_nvemud
t "nvemud exits 0 on SIGTERM afterwards (exit $STOP_RC)" [ "$STOP_RC" = 0 ]
finish
