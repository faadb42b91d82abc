#!/bin/sh
# SPDX-License-Identifier: MIT
#
# nvemu-perf natively against nvemud's NVMe/TCP target on 127.0.0.1: the
# target pinned to one CPU, the generator (which polls) to another. Prints
# IOPS, MiB/s, latency percentiles and the target's CPU time per I/O (from
# /proc/<pid>/stat, user + system) for 4 KiB randread QD1 and QD32, 4 KiB
# randwrite QD32 and 128 KiB seqread QD8.
#
#   bench/perf-tcp.sh BUILD_DIR
#
# Environment: NVEMU_BENCH_RUNTIME (s per run, default 10), NVEMU_BENCH_SIZE_MB
# (the RAM namespace, default 256), NVEMU_BENCH_TARGET_CPU (default 0),
# NVEMU_BENCH_PERF_CPU (default 1).
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
runtime=${NVEMU_BENCH_RUNTIME:-10}
size_mb=${NVEMU_BENCH_SIZE_MB:-256}
tcpu=${NVEMU_BENCH_TARGET_CPU:-0}
pcpu=${NVEMU_BENCH_PERF_CPU:-1}
nvemud=$build/src/daemon/nvemud
rpc=$build/src/rpc-cli/nvemu-rpc
perf=$build/src/perf/nvemu-perf
jget=$build/tests/daemon/json-get
for b in "$nvemud" "$rpc" "$perf" "$jget"; do
	[ -x "$b" ] || { echo "$0: $b missing (ninja -C $build)" >&2; exit 1; }
done
command -v taskset >/dev/null || { echo "$0: taskset (util-linux) is required" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/nvemu-bench.XXXXXX")
NQN=nqn.2024-01.io.nvemu:bench
DPID=
trap '[ -n "$DPID" ] && kill $DPID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

taskset -c "$tcpu" "$nvemud" -r "$T/sock" -l none -m none -u none >"$T/d.log" 2>&1 &
DPID=$!
i=0
until "$rpc" -s "$T/sock" rpc_get_methods >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 200 ] || { echo "$0: nvemud did not start" >&2; cat "$T/d.log" >&2; exit 1; }
	sleep 0.05
done
"$rpc" -s "$T/sock" bdev_malloc_create --name B0 --num_blocks $((size_mb * 2048)) \
	--block_size 512 >/dev/null
"$rpc" -s "$T/sock" nvme_subsystem_create --nqn $NQN --serial_number BENCH0001 >/dev/null
"$rpc" -s "$T/sock" nvme_namespace_create --nqn $NQN --bdev_name B0 --nsid 1 >/dev/null
port=$("$rpc" -s "$T/sock" nvmf_subsystem_add_listener --nqn $NQN --trtype tcp \
	--traddr 127.0.0.1 --trsvcid 0 --adrfam ipv4 | "$jget" trsvcid)
trid="trtype:tcp traddr:127.0.0.1 trsvcid:$port subnqn:$NQN"
hz=$(getconf CLK_TCK)

# Target CPU ticks so far (utime + stime of every thread).
ticks() {
	awk '{ print $14 + $15 }' "/proc/$DPID/stat"
}

# Write the whole namespace once, so reads find allocated RAM.
taskset -c "$pcpu" "$perf" -r "$trid" -w write -o 131072 -q 8 \
	-N $((size_mb * 8)) --json >/dev/null

echo "nvemu-perf -> nvemud NVMe/TCP on 127.0.0.1 (target CPU $tcpu, generator CPU $pcpu," \
	"${runtime} s each, ${size_mb} MiB RAM namespace)"
printf '%-22s %10s %9s %9s %9s %9s %9s %12s %12s\n' workload IOPS MiB/s "avg us" "p50 us" \
	"p99 us" "p99.9 us" "tgt us/IO" "perf us/IO"
# v KEY FORMAT: a figure of the last run's JSON.
v() {
	printf '%s' "$out" | "$jget" "$1" | awk -v f="$2" '{ printf f, $1 }'
}
run() {
	name=$1
	shift
	t0=$(ticks)
	out=$(taskset -c "$pcpu" "$perf" -r "$trid" -t "$runtime" --json "$@")
	t1=$(ticks)
	ios=$(printf '%s' "$out" | "$jget" ios)
	tgt=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v n="$ios" \
		'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print "-" }')
	printf '%-22s %10s %9s %9s %9s %9s %9s %12s %12s\n' "$name" "$(v iops %.0f)" \
		"$(v mibps %.1f)" "$(v lat_avg_us %.1f)" "$(v p50_us %.1f)" "$(v p99_us %.1f)" \
		"$(v p999_us %.1f)" "$tgt" "$(v cpu_us_per_io %.1f)"
}
run "4k randread QD1" -w randread -o 4096 -q 1
run "4k randread QD32" -w randread -o 4096 -q 32
run "4k randwrite QD32" -w randwrite -o 4096 -q 32
run "128k seqread QD8" -w read -o 131072 -q 8
