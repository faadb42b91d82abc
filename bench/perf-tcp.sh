#!/bin/sh
# SPDX-License-Identifier: MIT
#
# nvemu-perf natively against nvemud's NVMe/TCP target on 127.0.0.1: the
# target pinned to one CPU, the generator (which polls) to another. With two
# builds, both targets run side by side (idle one costs nothing) and every
# job alternates between them, NEW then OLD, for NVEMU_BENCH_ROUNDS rounds;
# the table shows the median of the rounds and the NEW/OLD ratio. The same
# generator (NEW's nvemu-perf) drives both, so only the target differs.
#
# Namespaces: 1 is a null bdev (reads return zeroes, writes are dropped:
# the transport alone), 2 a RAM bdev (written once before the runs).
# Jobs: 4 KiB randread QD1 (average and p99 latency), 4 KiB randread QD32,
# 4 KiB randwrite QD32, 128 KiB seqread QD8, 512 KiB write QD16, and 4 KiB
# randread QD32 with header and data digests. "tgt us/IO" is the target's
# CPU time (user + system, /proc/PID/stat) per I/O.
#
# Then the reactor table (NEW only): nvemud --reactors 1 and --reactors 2
# against nvemu-perf with two queue pairs (-P 2, so each reactor gets one),
# nothing pinned (two reactors on a 2-CPU machine share the CPUs with the
# generator): IOPS, the target's CPU per I/O (all threads) and the CPUs it
# kept busy. Flat CPU per I/O and IOPS growing with reactors is the goal;
# on a machine with fewer free CPUs than reactors + generator, IOPS cannot.
#
#   bench/perf-tcp.sh NEW_BUILD_DIR [OLD_BUILD_DIR]
#
# Environment: NVEMU_BENCH_RUNTIME (s per run, default 3), NVEMU_BENCH_ROUNDS
# (default 3), NVEMU_BENCH_SIZE_MB (the RAM namespace, default 256),
# NVEMU_BENCH_NS ("1 2": which namespaces), NVEMU_BENCH_TARGET_CPU (default 0),
# NVEMU_BENCH_PERF_CPU (default 1), NVEMU_BENCH_REACTORS (reactor counts of the
# reactor table, default "1 2"; empty: no table).
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 NEW_BUILD_DIR [OLD_BUILD_DIR]" >&2
	exit 2
fi
new=$(cd "$1" && pwd)
old=
[ $# -eq 2 ] && old=$(cd "$2" && pwd)
runtime=${NVEMU_BENCH_RUNTIME:-3}
rounds=${NVEMU_BENCH_ROUNDS:-3}
size_mb=${NVEMU_BENCH_SIZE_MB:-256}
nss=${NVEMU_BENCH_NS:-1 2}
tcpu=${NVEMU_BENCH_TARGET_CPU:-0}
pcpu=${NVEMU_BENCH_PERF_CPU:-1}
reactor_counts=${NVEMU_BENCH_REACTORS-1 2}
perf=$new/src/perf/nvemu-perf
jget=$new/tests/daemon/json-get
for b in "$perf" "$jget"; do
	[ -x "$b" ] || { echo "$0: $b missing (ninja -C $new)" >&2; exit 1; }
done
for bd in $new $old; do
	for b in "$bd/src/daemon/nvemud" "$bd/src/rpc-cli/nvemu-rpc"; do
		[ -x "$b" ] || { echo "$0: $b missing (ninja -C $bd)" >&2; exit 1; }
	done
done
command -v taskset >/dev/null || { echo "$0: taskset (util-linux) is required" >&2; exit 1; }
command -v python3 >/dev/null || { echo "$0: python3 is required" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/nvemu-bench.XXXXXX")
NQN=nqn.2024-01.io.nvemu:bench
PIDS=
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"' EXIT
hz=$(getconf CLK_TCK)

# start SIDE BUILD [CPUS [NVEMUD-ARGS...]]: a target with both namespaces; writes
# $T/SIDE.pid and .trid
start() {
	side=$1
	bd=$2
	cpus=${3:-$tcpu}
	shift 2
	[ $# -gt 0 ] && shift
	rpc="$bd/src/rpc-cli/nvemu-rpc -s $T/$side.sock"
	taskset -c "$cpus" "$bd/src/daemon/nvemud" -r "$T/$side.sock" -l none -m none -u none \
		"$@" >"$T/$side.log" 2>&1 &
	echo $! >"$T/$side.pid"
	PIDS="$PIDS $!"
	i=0
	until $rpc rpc_get_methods >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "$0: $side nvemud did not start" >&2; cat "$T/$side.log" >&2; exit 1; }
		sleep 0.05
	done
	$rpc bdev_null_create --name N0 --num_blocks $((16 << 21)) --block_size 512 >/dev/null
	$rpc bdev_malloc_create --name B0 --num_blocks $((size_mb * 2048)) --block_size 512 >/dev/null
	$rpc nvme_subsystem_create --nqn $NQN --serial_number BENCH0001 >/dev/null
	$rpc nvme_namespace_create --nqn $NQN --bdev_name N0 --nsid 1 >/dev/null
	$rpc nvme_namespace_create --nqn $NQN --bdev_name B0 --nsid 2 >/dev/null
	port=$($rpc nvmf_subsystem_add_listener --nqn $NQN --trtype tcp --traddr 127.0.0.1 \
		--trsvcid 0 --adrfam ipv4 | "$jget" trsvcid)
	echo "trtype:tcp traddr:127.0.0.1 trsvcid:$port subnqn:$NQN" >"$T/$side.trid"
	# Write the RAM namespace once, so reads find allocated memory.
	taskset -c "$pcpu" "$perf" -r "$(cat "$T/$side.trid")" --nsid 2 -w write -o 131072 -q 8 \
		-N $((size_mb * 8)) --json >/dev/null
}

# Target CPU ticks so far (utime + stime of every thread).
ticks() {
	awk '{ print $14 + $15 }' "/proc/$(cat "$T/$1.pid")/stat"
}

# run SIDE ROUND NSID JOB PERF-ARGS...: one line of $T/results
run() {
	side=$1 round=$2 ns=$3 job=$4
	shift 4
	t0=$(ticks "$side")
	out=$(taskset -c "${perf_cpus:-$pcpu}" "$perf" -r "$(cat "$T/$side.trid")" --nsid "$ns" \
		-t "$runtime" --json --quiet "$@")
	t1=$(ticks "$side")
	printf '%s' "$out" >"$T/last.json"
	g() { "$jget" "$1" <"$T/last.json"; }
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ns" "$job" "$side" "$round" \
		"$(g iops)" "$(g mibps)" "$(g lat_avg_us)" "$(g p99_us)" "$(g ios)" \
		"$(awk -v t="$((t1 - t0))" -v hz="$hz" 'BEGIN { print t / hz }')" >>"$T/results"
}

JOBS='4k-randread-QD1|-w randread -o 4096 -q 1
4k-randread-QD32|-w randread -o 4096 -q 32
4k-randwrite-QD32|-w randwrite -o 4096 -q 32
128k-seqread-QD8|-w read -o 131072 -q 8
512k-write-QD16|-w write -o 524288 -q 16
4k-randread-QD32-digests|-w randread -o 4096 -q 32 --hdgst --ddgst'

start new "$new"
sides=new
if [ -n "$old" ]; then
	start old "$old"
	sides="new old"
fi
: >"$T/results"
r=1
while [ $r -le "$rounds" ]; do
	for ns in $nss; do
		printf '%s\n' "$JOBS" | while IFS='|' read -r job args; do
			for side in $sides; do
				# shellcheck disable=SC2086
				run "$side" $r "$ns" "$job" $args
			done
		done
	done
	r=$((r + 1))
done

echo "nvemu-perf -> nvemud NVMe/TCP on 127.0.0.1 (target CPU $tcpu, generator CPU $pcpu," \
	"${runtime} s per run, median of $rounds alternating rounds)"
echo "NEW: $new${old:+
OLD: $old}"
python3 - "$T/results" "$sides" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
sides = sys.argv[2].split()
res = {}
for ns, job, side, rnd, iops, mibps, avg, p99, ios, cpu in rows:
    res.setdefault((ns, job), {}).setdefault(side, []).append(
        (float(iops), float(mibps), float(avg), float(p99),
         float(cpu) * 1e6 / float(ios) if float(ios) else float("nan")))
def med(v, i):
    return statistics.median(x[i] for x in v)
nsname = {"1": "null", "2": "RAM"}
if len(sides) == 2:
    print(f"{'ns':4} {'job':26} {'NEW IOPS':>9} {'OLD IOPS':>9} {'ratio':>6} {'NEW MiB/s':>9}"
          f" {'NEW avg/p99 us':>15} {'OLD avg/p99 us':>15} {'NEW tgt us/IO':>13}"
          f" {'OLD tgt us/IO':>13} {'ratio':>6}")
else:
    print(f"{'ns':4} {'job':26} {'IOPS':>9} {'MiB/s':>9} {'avg/p99 us':>15} {'tgt us/IO':>10}")
for (ns, job), v in res.items():
    n = v["new"]
    lat = lambda s: f"{med(s, 2):.1f}/{med(s, 3):.1f}"
    if len(sides) == 2:
        o = v["old"]
        print(f"{nsname.get(ns, ns):4} {job:26} {med(n, 0):9.0f} {med(o, 0):9.0f}"
              f" {med(n, 0) / med(o, 0):6.2f} {med(n, 1):9.1f} {lat(n):>15} {lat(o):>15}"
              f" {med(n, 4):13.2f} {med(o, 4):13.2f} {med(n, 4) / med(o, 4):6.2f}")
    else:
        print(f"{nsname.get(ns, ns):4} {job:26} {med(n, 0):9.0f} {med(n, 1):9.1f} {lat(n):>15}"
              f" {med(n, 4):10.2f}")
PY

[ -n "$reactor_counts" ] || exit 0

# ---- the reactor table: --reactors 1 vs 2, two queue pairs, nothing pinned
RJOBS='4k-randread-QD32-P2|1|-w randread -o 4096 -q 32 -P 2
4k-randwrite-QD32-P2|2|-w randwrite -o 4096 -q 32 -P 2
128k-seqread-QD8-P2|1|-w read -o 131072 -q 8 -P 2'
all=$(seq -s, 0 $(($(getconf _NPROCESSORS_ONLN) - 1)))
for side in $sides; do
	kill "$(cat "$T/$side.pid")" 2>/dev/null || true
done
wait 2>/dev/null || true
PIDS=
: >"$T/rresults"
perf_cpus=$all
for n in $reactor_counts; do
	start "r$n" "$new" "$all" --reactors "$n"
done
r=1
while [ $r -le "$rounds" ]; do
	printf '%s\n' "$RJOBS" | while IFS='|' read -r job ns args; do
		for n in $reactor_counts; do
			: >"$T/results"
			# shellcheck disable=SC2086
			run "r$n" $r "$ns" "$job" $args
			sed "s/^/$n\t/" "$T/results" >>"$T/rresults"
		done
	done
	r=$((r + 1))
done
echo
echo "reactors: nvemud --reactors N (unpinned, CPUs $all shared with the generator), nvemu-perf -P 2," \
	"${runtime} s per run, median of $rounds rounds"
python3 - "$T/rresults" "$runtime" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
runtime = float(sys.argv[2])
res = {}
for n, ns, job, side, rnd, iops, mibps, avg, p99, ios, cpu in rows:
    res.setdefault(job, {}).setdefault(int(n), []).append(
        (float(iops), float(mibps), float(avg),
         float(cpu) * 1e6 / float(ios) if float(ios) else float("nan"), float(cpu) / runtime))
def med(v, i):
    return statistics.median(x[i] for x in v)
print(f"{'job':22} {'reactors':>8} {'IOPS':>9} {'MiB/s':>9} {'avg us':>9} {'tgt us/IO':>10}"
      f" {'tgt CPUs':>8} {'IOPS vs 1':>9}")
for job, v in res.items():
    base = med(v[min(v)], 0)
    for n in sorted(v):
        s = v[n]
        print(f"{job:22} {n:8} {med(s, 0):9.0f} {med(s, 1):9.1f} {med(s, 2):9.1f}"
              f" {med(s, 3):10.2f} {med(s, 4):8.2f} {med(s, 0) / base:9.2f}")
PY
