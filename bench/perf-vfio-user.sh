#!/bin/sh
# SPDX-License-Identifier: MIT
#
# nvemu-perf (the host driver's vfio-user client) against nvemud's
# vfio-user controller, NEW build against OLD build (issue 13: doorbells
# without messages). Each build's nvemud serves a controller with a null
# namespace (nsid 1) and a RAM namespace (nsid 2); the targets run on one
# CPU, the generator (which polls) on another. Three alternating rounds
# (NEW, OLD, NEW, OLD, ...) of 4 KiB randread QD1 and QD32 on the null
# namespace and QD32 on the RAM one; prints the median of the rounds per
# side, the target's CPU time per I/O (/proc/<pid>/stat, user + system)
# and the NEW/OLD ratio.
#
#   bench/perf-vfio-user.sh NEWBUILD [OLDBUILD]      (OLDBUILD: /work/oldbuild)
#
# Environment: NVEMU_BENCH_RUNTIME (s per run, default 5), NVEMU_BENCH_ROUNDS
# (default 3), NVEMU_BENCH_POLL_US (nvemud --poll-us for both targets,
# default 200), NVEMU_BENCH_TARGET_CPU (default 0), NVEMU_BENCH_PERF_CPU
# (default 1), NVEMU_BENCH_SIZE_MB (namespaces, default 256).
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 NEWBUILD [OLDBUILD]" >&2
	exit 2
fi
new=$(cd "$1" && pwd)
old=$(cd "${2:-/work/oldbuild}" && pwd)
runtime=${NVEMU_BENCH_RUNTIME:-5}
rounds=${NVEMU_BENCH_ROUNDS:-3}
poll_us=${NVEMU_BENCH_POLL_US:-200}
tcpu=${NVEMU_BENCH_TARGET_CPU:-0}
pcpu=${NVEMU_BENCH_PERF_CPU:-1}
size_mb=${NVEMU_BENCH_SIZE_MB:-256}
jget=$new/tests/daemon/json-get
for b in "$jget" "$new/src/daemon/nvemud" "$new/src/rpc-cli/nvemu-rpc" "$new/src/perf/nvemu-perf" \
	"$old/src/daemon/nvemud" "$old/src/rpc-cli/nvemu-rpc" "$old/src/perf/nvemu-perf"; do
	[ -x "$b" ] || { echo "$0: $b missing" >&2; exit 1; }
done
command -v taskset >/dev/null || { echo "$0: taskset (util-linux) is required" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/nvemu-vfu-perf.XXXXXX")
NQN=nqn.2024-01.io.nvemu:vfubench
PIDS=
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"' EXIT

# start SIDE BUILD: nvemud of BUILD serving $T/SIDE.vfu; sets the pid in $T/SIDE.pid
start() {
	side=$1
	b=$2
	rpc="$b/src/rpc-cli/nvemu-rpc -s $T/$side.sock"
	taskset -c "$tcpu" "$b/src/daemon/nvemud" -r "$T/$side.sock" -l none -m none -u none \
		--poll-us "$poll_us" >"$T/$side.log" 2>&1 &
	pid=$!
	PIDS="$PIDS $pid"
	echo "$pid" >"$T/$side.pid"
	i=0
	until $rpc rpc_get_methods >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "$0: $side nvemud did not start" >&2; cat "$T/$side.log" >&2; exit 1; }
		sleep 0.05
	done
	$rpc bdev_null_create --name N0 --num_blocks $((size_mb * 2048)) >/dev/null
	$rpc bdev_malloc_create --name B0 --num_blocks $((size_mb * 2048)) --block_size 512 >/dev/null
	$rpc nvme_subsystem_create --nqn $NQN --serial_number VFUBENCH1 >/dev/null
	$rpc nvme_namespace_create --nqn $NQN --bdev_name N0 --nsid 1 >/dev/null
	$rpc nvme_namespace_create --nqn $NQN --bdev_name B0 --nsid 2 >/dev/null
	$rpc nvme_controller_create --nqn $NQN --socket "$T/$side.vfu" --num_queues 4 |
		"$jget" . >"$T/$side.ctrl"
	for ns in 1 2; do
		$rpc nvme_controller_attach_ns -c "$(cat "$T/$side.ctrl")" --nsid $ns >/dev/null 2>&1 || true
	done
	# the RAM namespace written once, so reads find allocated memory
	taskset -c "$pcpu" "$b/src/perf/nvemu-perf" -r "trtype:vfio-user traddr:$T/$side.vfu" \
		--nsid 2 -w write -o 131072 -q 8 -N $((size_mb * 8)) --json >/dev/null
}

start new "$new"
start old "$old"
hz=$(getconf CLK_TCK)
ticks() {
	awk '{ print $14 + $15 }' "/proc/$(cat "$T/$1.pid")/stat"
}

# run SIDE BUILD WL ARGS...: one nvemu-perf run; appends "iops avg p99 tgt_us_per_io" to $T/SIDE.WL
run() {
	side=$1
	b=$2
	wl=$3
	shift 3
	t0=$(ticks "$side")
	out=$(taskset -c "$pcpu" "$b/src/perf/nvemu-perf" -r "trtype:vfio-user traddr:$T/$side.vfu" \
		-t "$runtime" --json "$@")
	t1=$(ticks "$side")
	g() { printf '%s' "$out" | "$jget" "$1"; }
	awk -v i="$(g iops)" -v a="$(g lat_avg_us)" -v p="$(g p99_us)" -v n="$(g ios)" \
		-v t="$((t1 - t0))" -v hz="$hz" \
		'BEGIN { printf "%f %f %f %f\n", i, a, p, (n > 0 ? t / hz * 1e6 / n : 0) }' \
		>>"$T/$side.$wl"
}

WLS="qd1 qd32 ram32"
wl_args() {
	case $1 in
	qd1) echo "--nsid 1 -w randread -o 4096 -q 1" ;;
	qd32) echo "--nsid 1 -w randread -o 4096 -q 32" ;;
	ram32) echo "--nsid 2 -w randread -o 4096 -q 32" ;;
	esac
}
wl_name() {
	case $1 in
	qd1) echo "null 4k randread QD1" ;;
	qd32) echo "null 4k randread QD32" ;;
	ram32) echo "RAM 4k randread QD32" ;;
	esac
}

r=0
while [ $r -lt "$rounds" ]; do
	r=$((r + 1))
	for wl in $WLS; do
		# shellcheck disable=SC2046
		run new "$new" $wl $(wl_args $wl)
		# shellcheck disable=SC2046
		run old "$old" $wl $(wl_args $wl)
	done
done

# med SIDE WL COL: the median over the rounds of column COL
med() {
	awk -v c="$3" '{ print $c }' "$T/$1.$2" | sort -g | awk '{ v[NR] = $1 }
		END { printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'
}

echo "nvemu-perf -> nvemud over vfio-user (targets on CPU $tcpu, generator on CPU $pcpu," \
	"--poll-us $poll_us, ${runtime} s per run, median of $rounds alternating rounds)"
echo "NEW: $new"
echo "OLD: $old"
printf '%-22s %-4s %10s %9s %9s %10s\n' workload side IOPS "avg us" "p99 us" "tgt us/IO"
for wl in $WLS; do
	for side in new old; do
		printf '%-22s %-4s %10.0f %9.1f %9.1f %10.2f\n' "$(wl_name $wl)" \
			"$(echo $side | tr a-z A-Z)" "$(med $side $wl 1)" "$(med $side $wl 2)" \
			"$(med $side $wl 3)" "$(med $side $wl 4)"
	done
	printf '%-22s %-4s %10s %9s %9s %10s\n' "" "N/O" \
		"$(ratio "$(med new $wl 1)" "$(med old $wl 1)")" \
		"$(ratio "$(med new $wl 2)" "$(med old $wl 2)")" \
		"$(ratio "$(med new $wl 3)" "$(med old $wl 3)")" \
		"$(ratio "$(med new $wl 4)" "$(med old $wl 4)")"
done
nd=$("$new/src/rpc-cli/nvemu-rpc" -s "$T/new.sock" nvme_controller_debug_get -c "$(cat "$T/new.ctrl")" |
	"$jget" pcie.doorbells.mem_writes 2>/dev/null || echo "?")
echo "NEW target: doorbell values taken from mapped memory: $nd"
