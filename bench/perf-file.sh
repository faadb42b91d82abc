#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The file backend under nvemu-perf over NVMe/TCP on 127.0.0.1: namespace 1
# is a file on tmpfs (/dev/shm, buffered: the backend's own cost, no device),
# namespace 2 a file on a real file system opened with O_DIRECT (/var/tmp by
# default). With two builds, both targets run side by side and every job
# alternates between them, NEW then OLD, for NVEMU_BENCH_ROUNDS rounds; the
# table shows the median of the rounds and the NEW/OLD ratios. The same
# generator (NEW's nvemu-perf) drives both, so only the target differs.
# "tgt us/IO" is the target's CPU time (user + system, /proc/PID/stat) per
# I/O; "enter/IO" is the target's io_uring_enter system calls per I/O,
# counted by `perf stat` on the syscalls:sys_enter_io_uring_enter tracepoint
# when perf can attach (root, or perf_event_paranoid allowing it), else "-".
#
#   bench/perf-file.sh NEW_BUILD_DIR [OLD_BUILD_DIR]
#
# OLD_BUILD_DIR is a build of the commit to compare with, e.g.
#   git worktree add /tmp/nvemu-base <commit> && meson setup /tmp/nvemu-base/build \
#     /tmp/nvemu-base && ninja -C /tmp/nvemu-base/build src/daemon/nvemud src/rpc-cli/nvemu-rpc
#
# Environment: NVEMU_BENCH_RUNTIME (s per run, default 3), NVEMU_BENCH_ROUNDS
# (default 3), NVEMU_BENCH_SIZE_MB (each file, default 256),
# NVEMU_BENCH_DIRECT_DIR (default /var/tmp), NVEMU_BENCH_NS ("1 2"),
# NVEMU_BENCH_TARGET_CPU (default 0), NVEMU_BENCH_PERF_CPU (default 1).
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
ddir=${NVEMU_BENCH_DIRECT_DIR:-/var/tmp}
nss=${NVEMU_BENCH_NS:-1 2}
tcpu=${NVEMU_BENCH_TARGET_CPU:-0}
pcpu=${NVEMU_BENCH_PERF_CPU:-1}
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
[ -d /dev/shm ] || { echo "$0: /dev/shm (tmpfs) is required" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/nvemu-bench.XXXXXX")
SHM=$(mktemp -d /dev/shm/nvemu-bench.XXXXXX)
DIR=$(mktemp -d "$ddir/nvemu-bench.XXXXXX")
NQN=nqn.2024-01.io.nvemu:bench-file
PIDS=
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T" "$SHM" "$DIR"' EXIT
hz=$(getconf CLK_TCK)

# The files, written through once so that reads find allocated blocks; both
# targets use the same ones (runs alternate, never overlap).
dd if=/dev/urandom of="$SHM/ns1.img" bs=1M count="$size_mb" status=none
dd if=/dev/urandom of="$DIR/ns2.img" bs=1M count="$size_mb" oflag=direct status=none

# start SIDE BUILD: a target with both namespaces; writes $T/SIDE.pid and .trid
start() {
	side=$1
	bd=$2
	rpc="$bd/src/rpc-cli/nvemu-rpc -s $T/$side.sock"
	taskset -c "$tcpu" "$bd/src/daemon/nvemud" -r "$T/$side.sock" -l none -m none -u none \
		>"$T/$side.log" 2>&1 &
	echo $! >"$T/$side.pid"
	PIDS="$PIDS $!"
	i=0
	until $rpc rpc_get_methods >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "$0: $side nvemud did not start" >&2; cat "$T/$side.log" >&2; exit 1; }
		sleep 0.05
	done
	$rpc bdev_file_create --name F0 --filename "$SHM/ns1.img" --block_size 4096 \
		--direct false >/dev/null
	$rpc bdev_file_create --name F1 --filename "$DIR/ns2.img" --block_size 4096 \
		--direct true >/dev/null
	$rpc nvme_subsystem_create --nqn $NQN --serial_number BENCHF001 >/dev/null
	$rpc nvme_namespace_create --nqn $NQN --bdev_name F0 --nsid 1 >/dev/null
	$rpc nvme_namespace_create --nqn $NQN --bdev_name F1 --nsid 2 >/dev/null
	port=$($rpc nvmf_subsystem_add_listener --nqn $NQN --trtype tcp --traddr 127.0.0.1 \
		--trsvcid 0 --adrfam ipv4 | "$jget" trsvcid)
	echo "trtype:tcp traddr:127.0.0.1 trsvcid:$port subnqn:$NQN" >"$T/$side.trid"
}

# Target CPU ticks so far (utime + stime of every thread).
ticks() {
	awk '{ print $14 + $15 }' "/proc/$(cat "$T/$1.pid")/stat"
}

# Can perf count the target's io_uring_enter calls?
PERF_EV=syscalls:sys_enter_io_uring_enter
use_perf=no
if command -v perf >/dev/null 2>&1 &&
	perf stat -x, -e $PERF_EV -o /dev/null -- true >/dev/null 2>&1; then
	use_perf=yes
fi

# run SIDE ROUND NSID JOB PERF-ARGS...: one line of $T/results
run() {
	side=$1 round=$2 ns=$3 job=$4
	shift 4
	ppid=
	if [ $use_perf = yes ]; then
		perf stat -x, -e $PERF_EV -o "$T/perf.csv" -p "$(cat "$T/$side.pid")" 2>/dev/null &
		ppid=$!
	fi
	t0=$(ticks "$side")
	out=$(taskset -c "$pcpu" "$perf" -r "$(cat "$T/$side.trid")" --nsid "$ns" -t "$runtime" \
		--json --quiet "$@")
	t1=$(ticks "$side")
	enters=-
	if [ -n "$ppid" ]; then
		kill -INT "$ppid"
		wait "$ppid" || true
		enters=$(awk -F, -v ev=$PERF_EV '$3 == ev { print $1 }' "$T/perf.csv")
		[ -n "$enters" ] || enters=-
	fi
	printf '%s' "$out" >"$T/last.json"
	g() { "$jget" "$1" <"$T/last.json"; }
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ns" "$job" "$side" "$round" \
		"$(g iops)" "$(g mibps)" "$(g lat_avg_us)" "$(g p99_us)" "$(g ios)" \
		"$(awk -v t="$((t1 - t0))" -v hz="$hz" 'BEGIN { print t / hz }')" \
		"$enters" >>"$T/results"
}

JOBS='4k-randread-QD1|-w randread -o 4096 -q 1
4k-randread-QD32|-w randread -o 4096 -q 32
4k-randwrite-QD32|-w randwrite -o 4096 -q 32
4k-randread-QD32x2|-w randread -o 4096 -q 32 -P 2
128k-seqread-QD8|-w read -o 131072 -q 8'

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

echo "nvemu-perf -> nvemud NVMe/TCP on 127.0.0.1 -> file bdevs (target CPU $tcpu, generator" \
	"CPU $pcpu, ${runtime} s per run, median of $rounds alternating rounds)"
echo "ns1: $SHM (tmpfs, buffered); ns2: $DIR ($(findmnt -no FSTYPE -T "$DIR" 2>/dev/null || echo ?), O_DIRECT)"
echo "NEW: $new${old:+
OLD: $old}"
python3 - "$T/results" "$sides" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
sides = sys.argv[2].split()
res = {}
nan = float("nan")
for ns, job, side, rnd, iops, mibps, avg, p99, ios, cpu, enters in rows:
    n = float(ios)
    res.setdefault((ns, job), {}).setdefault(side, []).append(
        (float(iops), float(mibps), float(avg), float(p99),
         float(cpu) * 1e6 / n if n else nan,
         float(enters) / n if n and enters != "-" else nan))
def med(v, i):
    return statistics.median(x[i] for x in v)
def ent(s):
    e = med(s, 5)
    return "-" if e != e else f"{e:.3f}"

nsname = {"1": "tmpfs", "2": "direct"}
if len(sides) == 2:
    print(f"{'ns':6} {'job':20} {'NEW IOPS':>9} {'OLD IOPS':>9} {'ratio':>6}"
          f" {'NEW avg/p99 us':>15} {'OLD avg/p99 us':>15} {'NEW tgt us/IO':>13}"
          f" {'OLD tgt us/IO':>13} {'ratio':>6} {'NEW enter/IO':>12} {'OLD enter/IO':>12}")
else:
    print(f"{'ns':6} {'job':20} {'IOPS':>9} {'MiB/s':>9} {'avg/p99 us':>15} {'tgt us/IO':>10}"
          f" {'enter/IO':>8}")
for (ns, job), v in res.items():
    n = v["new"]
    lat = lambda s: f"{med(s, 2):.1f}/{med(s, 3):.1f}"
    if len(sides) == 2:
        o = v["old"]
        print(f"{nsname.get(ns, ns):6} {job:20} {med(n, 0):9.0f} {med(o, 0):9.0f}"
              f" {med(n, 0) / med(o, 0):6.2f} {lat(n):>15} {lat(o):>15}"
              f" {med(n, 4):13.2f} {med(o, 4):13.2f} {med(n, 4) / med(o, 4):6.2f}"
              f" {ent(n):>12} {ent(o):>12}")
    else:
        print(f"{nsname.get(ns, ns):6} {job:20} {med(n, 0):9.0f} {med(n, 1):9.1f} {lat(n):>15}"
              f" {med(n, 4):10.2f} {ent(n):>8}")
PY
