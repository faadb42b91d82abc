#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (bench/tcp-vs-nvmet.sh prepends RUNTIME, RAMP and
# SIZE_MB): fio through the kernel's NVMe/TCP host against nvemud (RAM
# namespace, 127.0.0.1:4420) and against the kernel target nvmet-tcp (null_blk
# memory_backed=1, 127.0.0.1:4421), same size and 4 KiB blocks on both, both
# prefilled so that reads touch allocated memory. Each workload runs on both
# sides back to back (alternating which goes first) so that load drift on the
# host machine hits both alike. Prints a table with the ratio nvemu/nvmet.
set -u
RUNTIME=${RUNTIME:-8}
RAMP=${RAMP:-2}
SIZE_MB=${SIZE_MB:-256}
ROUNDS=${ROUNDS:-1}
NQN=nqn.2014-08.io.nvemu:default
KNQN=nqn.2014-08.io.nvemu:bench-nvmet
HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:5b1d0e2a-3c4f-4a5b-8c6d-7e8f9a0b1c2d
HOSTID=5b1d0e2a-3c4f-4a5b-8c6d-7e8f9a0b1c2d
LOG=/tmp/nvemud.log
RES=/tmp/results
CFS=/sys/kernel/config

die() {
	echo "bench: $*"
	echo "--- nvemud log"
	tail -n 20 $LOG 2>/dev/null
	echo "--- dmesg"
	dmesg | tail -n 20
	exit 1
}

echo "guest: $(uname -r), $(nproc) vCPUs, $(awk '/MemTotal/ { print $2 / 1024 " MiB" }' /proc/meminfo)"
echo "fio: $(fio --version); runtime ${RUNTIME}s after ${RAMP}s ramp; libaio, direct=1, 1 job"

# ---- modules for the kernel target (null_blk without its default device)
while read -r ko; do
	case $ko in
	*/null_blk.ko) insmod "$ko" nr_devices=0 || die "insmod $ko" ;;
	*) insmod "$ko" 2>/dev/null ;;
	esac
done < /etc/bench-modules.order
grep -q configfs /proc/mounts || mount -t configfs none $CFS || die "mount configfs"
[ -d $CFS/nvmet ] || die "no $CFS/nvmet (nvmet not loaded)"
[ -d $CFS/nullb ] || die "no $CFS/nullb (null_blk not loaded)"

# ---- nvemud: default subsystem and listener, a RAM namespace (NSID 3)
nvemud -q -l 127.0.0.1:4420 >>$LOG 2>&1 &
NVEMUD_PID=$!
for _i in $(seq 100); do
	nvemu-rpc rpc_get_methods >/dev/null 2>&1 && break
	kill -0 $NVEMUD_PID 2>/dev/null || die "nvemud exited"
	sleep 0.1
done
nvemu-rpc bdev_malloc_create -b Bench0 --num_blocks $((SIZE_MB * 256)) --block_size 4096 \
	>/dev/null || die "bdev_malloc_create"
nvemu-rpc nvme_namespace_create --nqn $NQN -b Bench0 -n 3 >/dev/null || die "namespace_create"

# ---- kernel target: null_blk memory_backed through configfs, nvmet-tcp port 4421
NB=$CFS/nullb/nullb0
mkdir $NB || die "mkdir $NB"
echo "$SIZE_MB" > $NB/size && echo 4096 > $NB/blocksize && echo 1 > $NB/memory_backed &&
	nproc > $NB/submit_queues && echo 1 > $NB/power || die "null_blk setup"
for _i in $(seq 50); do [ -b /dev/nullb0 ] && break; sleep 0.1; done
[ -b /dev/nullb0 ] || die "no /dev/nullb0"
S=$CFS/nvmet/subsystems/$KNQN
mkdir $S && echo 1 > $S/attr_allow_any_host && mkdir $S/namespaces/1 &&
	printf %s /dev/nullb0 > $S/namespaces/1/device_path || die "nvmet subsystem"
echo 1 > $S/namespaces/1/enable || die "nvmet namespace enable"
[ "$(cat $S/namespaces/1/enable)" = 1 ] || die "nvmet namespace not enabled"
P=$CFS/nvmet/ports/1
mkdir $P && echo tcp > $P/addr_trtype && echo ipv4 > $P/addr_adrfam &&
	echo 127.0.0.1 > $P/addr_traddr && echo 4421 > $P/addr_trsvcid &&
	ln -s $S $P/subsystems/$KNQN || die "nvmet port"

# ---- connect both with nvme-cli (defaults: one I/O queue per CPU, depth 128)
nvme connect -t tcp -a 127.0.0.1 -s 4420 -n $NQN --hostnqn=$HOSTNQN --hostid=$HOSTID \
	>/dev/null || die "nvme connect to nvemu"
nvme connect -t tcp -a 127.0.0.1 -s 4421 -n $KNQN --hostnqn=$HOSTNQN --hostid=$HOSTID \
	>/dev/null || die "nvme connect to nvmet"

# The block device of subsystem $1, NSID $2 (multipath head or plain).
ns_dev() {
	for _b in /sys/block/nvme*; do
		case ${_b##*/} in nvme*c*) continue ;; esac
		[ "$(cat "$_b/nsid" 2>/dev/null)" = "$2" ] &&
			grep -qx "$1" "$_b/device/subsysnqn" 2>/dev/null &&
			[ -b "/dev/${_b##*/}" ] && echo "/dev/${_b##*/}" && return 0
	done
	return 1
}
for _i in $(seq 150); do
	EMU=$(ns_dev $NQN 3) && KRN=$(ns_dev $KNQN 1) && break
	sleep 0.1
done
[ -n "${EMU:-}" ] && [ -n "${KRN:-}" ] || die "namespaces not found (nvemu '${EMU:-}' nvmet '${KRN:-}')"
echo "nvemu:  $EMU ($(($(cat /sys/block/${EMU#/dev/}/size) / 2048)) MiB," \
	"lbs $(cat /sys/block/${EMU#/dev/}/queue/logical_block_size))"
echo "nvmet:  $KRN ($(($(cat /sys/block/${KRN#/dev/}/size) / 2048)) MiB," \
	"lbs $(cat /sys/block/${KRN#/dev/}/queue/logical_block_size))"

fio_common="--ioengine=libaio --direct=1 --numjobs=1 --output-format=terse --terse-version=3"
prefill() {
	fio $fio_common --name=prefill --filename="$1" --rw=write --bs=128k --iodepth=8 \
		>/tmp/prefill.out 2>&1 || die "prefill $1: $(tail -n 3 /tmp/prefill.out)"
}
prefill "$EMU"
prefill "$KRN"

# run SIDE DEV NAME RW BS QD: append "NAME SIDE terse-line" to $RES.
failed=0
run() {
	_t0=$(cut -d' ' -f1 /proc/uptime)
	if fio $fio_common --name="$3" --filename="$2" --rw="$4" --bs="$5" --iodepth="$6" \
		--time_based --runtime="$RUNTIME" --ramp_time="$RAMP" --norandommap --randrepeat=0 \
		>/tmp/fio.out 2>/tmp/fio.err && grep -q '^3;' /tmp/fio.out; then
		echo "$3 $1 $_t0 $(grep '^3;' /tmp/fio.out | head -n 1)" >> $RES
	else
		echo "bench: fio $3 on $1 failed:"
		tail -n 5 /tmp/fio.err /tmp/fio.out
		failed=1
	fi
}
# both FIRST NAME RW BS QD
both() {
	if [ "$1" = nvemu ]; then
		run nvemu "$EMU" "$2" "$3" "$4" "$5"; run nvmet "$KRN" "$2" "$3" "$4" "$5"
	else
		run nvmet "$KRN" "$2" "$3" "$4" "$5"; run nvemu "$EMU" "$2" "$3" "$4" "$5"
	fi
}
: > $RES
for _r in $(seq "$ROUNDS"); do
	both nvemu rr1 randread 4k 1
	both nvmet rr32 randread 4k 32
	both nvemu sr8 read 128k 8
	both nvmet rw32 randwrite 4k 32
done

nvme disconnect -n $NQN >/dev/null 2>&1
nvme disconnect -n $KNQN >/dev/null 2>&1
kill -TERM $NVEMUD_PID
wait $NVEMUD_PID

echo
# Terse v3 fields: 5 error, 7 read KiB/s, 8 read IOPS, 15/16 read clat max/mean
# (us), 40 read lat mean (us), 48 write KiB/s, 49 write IOPS, 56/57 write clat
# max/mean. With several rounds, the best of each side (the host machine's
# load only ever slows a run down).
awk -v rounds="$ROUNDS" '
function best_max(arr, k, v) { if (!(k in arr) || v > arr[k]) arr[k] = v }
function best_min(arr, k, v) { if (!(k in arr) || v < arr[k]) arr[k] = v }
{
	split(substr($0, index($0, "3;")), f, ";")
	k = $1 "," $2
	if (f[5] != 0) printf "fio error %s on %s\n", f[5], k
	best_max(rbw, k, f[7]); best_max(riops, k, f[8]); best_max(wiops, k, f[49])
	best_min(rclat, k, f[16]); best_min(rlat, k, f[40])
}
function row(label, k, arr, div) {
	if (!((k ",nvemu") in arr) || !((k ",nvmet") in arr)) {
		printf "| %-36s | %10s | %10s | %6s |\n", label, "-", "-", "n/a"
		return
	}
	a = arr[k ",nvemu"] / div; b = arr[k ",nvmet"] / div
	printf "| %-36s | %10.1f | %10.1f | %6.2f |\n", label, a, b, (b > 0 ? a / b : 0)
}
END {
	if (rounds > 1) printf "best of %d rounds per side\n", rounds
	printf "| %-36s | %10s | %10s | %6s |\n", "workload", "nvemu", "nvmet", "ratio"
	printf "|--------------------------------------|------------|------------|--------|\n"
	row("4 KiB randread QD1, clat mean (us)", "rr1", rclat, 1)
	row("4 KiB randread QD1, total lat (us)", "rr1", rlat, 1)
	row("4 KiB randread QD1, IOPS", "rr1", riops, 1)
	row("4 KiB randread QD32, IOPS", "rr32", riops, 1)
	row("128 KiB seq read QD8, MiB/s", "sr8", rbw, 1024)
	row("4 KiB randwrite QD32, IOPS", "rw32", wiops, 1)
}' $RES
echo
echo "per run: workload side, guest uptime at start (s), IOPS, KiB/s, clat mean/max (us)"
awk '{ split(substr($0, index($0, "3;")), f, ";")
	if (f[49] > f[8]) printf "  %-5s %-5s %7.1f %8d %9d %10.1f %10d\n", $1, $2, $3, f[49], f[48], f[57], f[56]
	else printf "  %-5s %-5s %7.1f %8d %9d %10.1f %10d\n", $1, $2, $3, f[8], f[7], f[16], f[15] }' $RES
dmesg | grep -iE 'nvme|nvmet|null_blk' | grep -iE 'timeout|reset|error|fail|recover' | tail -n 10 |
	sed 's/^/  dmesg: /'
echo
echo "ratio = nvemu / nvmet (for latency, lower is better). The guest is emulated (QEMU TCG,"
echo "2 vCPUs), so absolute figures mean nothing; only the ratio does."
exit $failed
