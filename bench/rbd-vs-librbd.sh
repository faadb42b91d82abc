#!/bin/sh
# SPDX-License-Identifier: MIT
#
# nvemu as an RBD gateway against librbd itself: the same image of a
# one-OSD cluster (tests/ceph/cluster.sh, under a temporary directory) is
# driven once by `rbd bench` (librbd in the benchmark's process, no NVMe at
# all) and once by nvemu-perf over NVMe/TCP on 127.0.0.1 through nvemud's
# RBD namespace. Both with librbd's cache off (nvemud's setting) and the
# same queue depth. The ratio nvemu/librbd is what the gateway costs; the
# goal is a loss of at most 10 %.
#
# Jobs: 4 KiB randread QD32, 4 KiB randwrite QD32, 128 KiB seqread QD8
# (written once before the reads). The two take turns for
# NVEMU_BENCH_ROUNDS rounds; the table shows the medians.
#
#   bench/rbd-vs-librbd.sh BUILD_DIR
#
# nvemu-perf sleeps 50 us when a poll finds nothing (NVEMU_BENCH_IDLE_US; 0
# busy-polls): on a small machine a busy-polling generator takes the CPU the
# OSD needs, and the ratio would measure that instead of the gateway.
#
# Environment: NVEMU_BENCH_RUNTIME (s per nvemu-perf run, default 5; rbd
# bench moves the same amount of data nvemu-perf moved in its run),
# NVEMU_BENCH_ROUNDS (default 3), NVEMU_BENCH_SIZE_MB (the image, default 1024).
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
b=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
runtime=${NVEMU_BENCH_RUNTIME:-5}
rounds=${NVEMU_BENCH_ROUNDS:-3}
size_mb=${NVEMU_BENCH_SIZE_MB:-1024}
perf=$b/src/perf/nvemu-perf
rpc=$b/src/rpc-cli/nvemu-rpc
jget=$b/tests/daemon/json-get
cluster=$src/tests/ceph/cluster.sh
NQ=nqn.2024-01.io.nvemu:rbd-bench

T=$(mktemp -d "${TMPDIR:-/tmp}/nvemu-rbd-bench.XXXXXX")
DPID=
cleanup() {
	[ -z "$DPID" ] || kill "$DPID" 2>/dev/null || true
	"$cluster" stop "$T/ceph" >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

mkdir -p "$T/ceph"
s=$(date +%s)
"$cluster" start "$T/ceph" >"$T/cluster.log" 2>&1 || { cat "$T/cluster.log"; exit 1; }
echo "cluster up in $(($(date +%s) - s)) s"
conf=$T/ceph/ceph.conf
ceph -c "$conf" osd pool create rbd 8 >/dev/null 2>&1
rbd -c "$conf" pool init rbd
rbd -c "$conf" create --size "${size_mb}M" rbd/bench

"$b/src/daemon/nvemud" -r "$T/sock" -l none -m none -u none >"$T/nvemud.log" 2>&1 &
DPID=$!
i=0
until "$rpc" -s "$T/sock" rpc_get_methods >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "nvemud did not start" >&2; exit 1; }
	sleep 0.1
done
r() { "$rpc" -s "$T/sock" -t 60 "$@"; }
r bdev_rbd_create -b Rbd0 --pool_name rbd --rbd_name bench --config_file "$conf" >/dev/null
r nvme_subsystem_create --nqn $NQ --serial_number BENCH0001 >/dev/null
r nvme_namespace_create --nqn $NQ --bdev_name Rbd0 --nsid 1 >/dev/null
port=$(r nvmf_subsystem_add_listener --nqn $NQ --trtype tcp --traddr 127.0.0.1 \
	--trsvcid 0 --adrfam ipv4 | "$jget" trsvcid)
trid="trtype:tcp traddr:127.0.0.1 trsvcid:$port subnqn:$NQ"
range=$((size_mb * 1048576))

# Fill the image once so reads read data (an unwritten RBD object reads as zeroes without I/O).
rbd -c "$conf" bench --rbd_cache=false --io-type write --io-pattern seq --io-size 4M \
	--io-threads 8 --io-total "$range" rbd/bench >/dev/null 2>&1

# nvemu JOB: IOPS of one nvemu-perf run; sets NV_IOS to how many I/Os it did.
nvemu() {
	"$perf" -r "$trid" -w "$1" -o "$2" -q "$3" -t "$runtime" --range "$range" --json \
		--idle-us "${NVEMU_BENCH_IDLE_US:-50}" \
		>"$T/perf.json" 2>/dev/null
	NV_IOS=$("$jget" ios <"$T/perf.json")
	"$jget" iops <"$T/perf.json"
}

# librbd TYPE PATTERN SIZE QD IOS: ops/sec of rbd bench for the same amount of I/O.
librbd() {
	rbd -c "$conf" bench --rbd_cache=false --io-type "$1" --io-pattern "$2" --io-size "$3" \
		--io-threads "$4" --io-total $(($3 * $5)) rbd/bench 2>/dev/null |
		sed -n 's/.*ops\/sec: *\([0-9.]*\).*/\1/p' | tail -n 1
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : 0) }'; }

printf '%-26s %12s %12s %8s\n' job "nvemu IOPS" "librbd IOPS" ratio
for job in "randread 4096 32 read rand" "randwrite 4096 32 write rand" \
	"read 131072 8 read seq"; do
	set -- $job
	: >"$T/nv"
	: >"$T/lr"
	i=0
	while [ $i -lt "$rounds" ]; do
		nvemu "$1" "$2" "$3" >>"$T/nv"
		librbd "$4" "$5" "$2" "$3" "${NV_IOS:-1000}" >>"$T/lr"
		i=$((i + 1))
	done
	nv=$(median <"$T/nv")
	lr=$(median <"$T/lr")
	printf '%-26s %12.0f %12.0f %8.2f\n' "$1 $(($2 / 1024)) KiB QD$3" "$nv" "$lr" \
		"$(awk "BEGIN { print ($lr > 0 ? $nv / $lr : 0) }")"
done
