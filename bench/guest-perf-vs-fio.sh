#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the guest (bench/perf-vs-fio-nvmet.sh prepends RUNTIME and
# SIZE_MB): one nvmet-tcp target (null_blk memory_backed=1, 127.0.0.1:4421),
# driven once by nvemu-perf and once by fio through the kernel's NVMe/TCP
# host, workload by workload (alternating which goes first), and a table
# with the ratio nvemu-perf/fio.
set -u
RUNTIME=${RUNTIME:-8}
SIZE_MB=${SIZE_MB:-256}
KNQN=nqn.2014-08.io.nvemu:perf-vs-fio
HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:5b1d0e2a-3c4f-4a5b-8c6d-7e8f9a0b1c2d
HOSTID=5b1d0e2a-3c4f-4a5b-8c6d-7e8f9a0b1c2d
CFS=/sys/kernel/config
RES=/tmp/results
TRID="trtype:tcp traddr:127.0.0.1 trsvcid:4421 subnqn:$KNQN"

die() {
	echo "bench: $*"
	dmesg | tail -n 20
	exit 1
}

echo "guest: $(uname -r), $(nproc) vCPUs; $(fio --version); ${RUNTIME}s per run"
while read -r ko; do
	case $ko in
	*/null_blk.ko) insmod "$ko" nr_devices=0 || die "insmod $ko" ;;
	*) insmod "$ko" 2>/dev/null ;;
	esac
done < /etc/nvmet-modules.order
grep -q configfs /proc/mounts || mount -t configfs none $CFS || die "mount configfs"
NB=$CFS/nullb/nullb0
mkdir $NB && echo "$SIZE_MB" > $NB/size && echo 4096 > $NB/blocksize &&
	echo 1 > $NB/memory_backed && nproc > $NB/submit_queues && echo 1 > $NB/power ||
	die "null_blk setup"
for _i in $(seq 50); do [ -b /dev/nullb0 ] && break; sleep 0.1; done
S=$CFS/nvmet/subsystems/$KNQN
mkdir $S && echo 1 > $S/attr_allow_any_host && mkdir $S/namespaces/1 &&
	printf %s /dev/nullb0 > $S/namespaces/1/device_path &&
	echo 1 > $S/namespaces/1/enable || die "nvmet subsystem"
P=$CFS/nvmet/ports/1
mkdir $P && echo tcp > $P/addr_trtype && echo ipv4 > $P/addr_adrfam &&
	echo 127.0.0.1 > $P/addr_traddr && echo 4421 > $P/addr_trsvcid &&
	ln -s $S $P/subsystems/$KNQN || die "nvmet port"
nvme connect -t tcp -a 127.0.0.1 -s 4421 -n $KNQN --hostnqn=$HOSTNQN --hostid=$HOSTID \
	>/dev/null || die "nvme connect"
for _i in $(seq 150); do
	for _b in /sys/block/nvme*; do
		case ${_b##*/} in nvme*c*) continue ;; esac
		[ -b "/dev/${_b##*/}" ] && DEV=/dev/${_b##*/}
	done
	[ -n "${DEV:-}" ] && break
	sleep 0.1
done
[ -n "${DEV:-}" ] || die "no kernel namespace"
fio --name=prefill --filename=$DEV --ioengine=libaio --direct=1 --rw=write --bs=128k \
	--iodepth=8 >/dev/null 2>&1 || die "prefill"

# perf NAME RW BS QD / fio_run NAME RW BS QD: "NAME side IOPS MiB/s avg-lat-us" to $RES.
perf() {
	nvemu-perf -r "$TRID" --hostnqn $HOSTNQN -w "$2" -o "$3" -q "$4" -t "$RUNTIME" --json \
		>/tmp/perf.out 2>/tmp/perf.err || { echo "nvemu-perf $1 failed:"; cat /tmp/perf.err; return; }
	j=$(cat /tmp/perf.out)
	v() { echo "$j" | sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p"; }
	echo "$1 perf $(v iops) $(v mibps) $(v lat_avg_us)" >> $RES
}
fio_run() {
	fio --name="$1" --filename=$DEV --ioengine=libaio --direct=1 --numjobs=1 --rw="$2" \
		--bs="$3" --iodepth="$4" --time_based --runtime="$RUNTIME" --norandommap \
		--randrepeat=0 --output-format=terse --terse-version=3 >/tmp/fio.out 2>/tmp/fio.err ||
		{ echo "fio $1 failed:"; tail -n 5 /tmp/fio.err; return; }
	# Terse v3: 7/8 read KiB/s, IOPS, 40 read lat mean; 48/49 write KiB/s, IOPS, 81 write lat mean.
	grep '^3;' /tmp/fio.out | head -n 1 | awk -F';' -v n="$1" '{
		if ($49 > $8) printf "%s fio %d %.2f %.2f\n", n, $49, $48 / 1024, $81
		else printf "%s fio %d %.2f %.2f\n", n, $8, $7 / 1024, $40 }' >> $RES
}
: > $RES
perf rr1 randread 4096 1; fio_run rr1 randread 4k 1
fio_run rr32 randread 4k 32; perf rr32 randread 4096 32
perf rw32 randwrite 4096 32; fio_run rw32 randwrite 4k 32
fio_run sr8 read 128k 8; perf sr8 read 131072 8
nvme disconnect -n $KNQN >/dev/null 2>&1

echo
awk '{ k = $1 "," $2; iops[k] = $3; mib[k] = $4; lat[k] = $5 }
function row(label, w, arr) {
	a = arr[w ",perf"]; b = arr[w ",fio"]
	if (a == "" || b == "") { printf "| %-34s | %10s | %10s | %6s |\n", label, "-", "-", "n/a"; return }
	printf "| %-34s | %10.1f | %10.1f | %6.2f |\n", label, a, b, (b > 0 ? a / b : 0)
}
END {
	printf "| %-34s | %10s | %10s | %6s |\n", "workload", "nvemu-perf", "fio+kernel", "ratio"
	printf "|------------------------------------|------------|------------|--------|\n"
	row("4 KiB randread QD1, IOPS", "rr1", iops)
	row("4 KiB randread QD1, mean lat (us)", "rr1", lat)
	row("4 KiB randread QD32, IOPS", "rr32", iops)
	row("4 KiB randwrite QD32, IOPS", "rw32", iops)
	row("128 KiB seq read QD8, MiB/s", "sr8", mib)
}' $RES
echo
echo "ratio = nvemu-perf / fio+kernel host, same nvmet-tcp target. The guest is emulated"
echo "(QEMU TCG, 2 vCPUs): absolute figures mean nothing, only the ratio does."
