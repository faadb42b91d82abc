#!/bin/sh
# SPDX-License-Identifier: MIT
# The file backend inside nvemud, where submissions are batched per loop
# iteration: nvemu-perf --verify over NVMe/TCP on 127.0.0.1 against a
# buffered file, an O_DIRECT file under /var/tmp and a delay bdev over a
# third file, with deep queues and two queue pairs, then concurrent mixed
# load. After SIGTERM the data is in the files: a new daemon on the same
# files reads every pattern back.
. "$(dirname "$0")/../daemon/lib.sh"

if [ -z "${NVEMU_PERF:-}" ] || [ ! -x "$NVEMU_PERF" ]; then
	nok "NVEMU_PERF not set or not executable"
	exit 1
fi

NQN=nqn.2024-01.io.nvemu:file-io
D=$(mktemp -d /var/tmp/nvemu-file-io.XXXXXX)
PERFPIDS=
trap 'for p in $PERFPIDS; do kill $p 2>/dev/null; done; rm -rf "$D"; _finish' EXIT

# perf ARGS...: nvemu-perf with its report as TAP comments; I/O that never
# starts (a batch nobody submitted) fails it in 60 s rather than hanging.
perf() {
	timeout 60 "$NVEMU_PERF" --quiet "$@" >"$T/perf.out" 2>&1
	_rc=$?
	sed 's/^/# /' "$T/perf.out"
	return $_rc
}

# setup: the three file bdevs, the delay bdev and the subsystem; sets TRID.
setup() {
	rpc bdev_file_create --name F0 --filename "$T/f0.img" --num_blocks 65536 \
		--direct false >/dev/null &&
		rpc bdev_file_create --name F1 --filename "$D/f1.img" --num_blocks 8192 \
			--block_size 4096 --direct true >/dev/null &&
		rpc bdev_file_create --name F2 --filename "$T/f2.img" --num_blocks 16384 \
			--direct false >/dev/null &&
		rpc bdev_delay_create --name Slow --base_bdev_name F2 --latency_us 200 >/dev/null &&
		rpc nvme_subsystem_create --nqn $NQN --serial_number FILEIO01 >/dev/null &&
		rpc nvme_namespace_create --nqn $NQN --bdev_name F0 --nsid 1 >/dev/null &&
		rpc nvme_namespace_create --nqn $NQN --bdev_name F1 --nsid 2 >/dev/null &&
		rpc nvme_namespace_create --nqn $NQN --bdev_name Slow --nsid 3 >/dev/null || return 1
	_p=$(rpc nvmf_subsystem_add_listener --nqn $NQN --trtype tcp --traddr 127.0.0.1 \
		--trsvcid 0 --adrfam ipv4 | "$JSON_GET" trsvcid)
	[ "${_p:-0}" -gt 0 ] || return 1
	TRID="trtype:tcp traddr:127.0.0.1 trsvcid:$_p subnqn:$NQN"
}

TRID=
: >"$T/f0.img"
: >"$D/f1.img"
: >"$T/f2.img"
: >"$D/probe.img"
check "nvemud starts" start_daemon -l none -u none
call bdev_file_create --name Probe --filename "$D/probe.img" --num_blocks 8 --block_size 512 \
	--direct true
if [ "$RC" -ne 0 ]; then
	# Only a file system whose O_DIRECT alignment is above 512 refuses, naming it.
	check "512-byte blocks refused under O_DIRECT only for a coarser alignment" \
		sh -c 'printf "%s" "$1" | grep -q "below the O_DIRECT alignment"' - "$ERR"
else
	ok "512-byte blocks under O_DIRECT where the file system allows them"
	rpc bdev_delete --name Probe >/dev/null
fi
check "file bdevs (buffered, O_DIRECT, under a delay bdev) as namespaces 1-3" setup
[ -n "$TRID" ] || exit 1

# Mixed load on two namespaces at once, in the same loop iterations.
timeout 60 "$NVEMU_PERF" --quiet -r "$TRID" --nsid 1 -w randrw -M 60 -o 4096 -q 32 -t 2 \
	>"$T/mix1.out" 2>&1 &
PERFPIDS=$!
timeout 60 "$NVEMU_PERF" --quiet -r "$TRID" --nsid 2 -w randrw -M 60 -o 16384 -q 16 -t 2 \
	>"$T/mix2.out" 2>&1 &
PERFPIDS="$PERFPIDS $!"
m1=0
m2=0
wait "${PERFPIDS%% *}" || m1=$?
wait "${PERFPIDS##* }" || m2=$?
PERFPIDS=
sed 's/^/# /' "$T/mix1.out" "$T/mix2.out"
check "concurrent random mixed load on ns 1 and ns 2 for 2 s" [ $m1 -eq 0 ] && [ $m2 -eq 0 ]

# The pattern is per block (its LBA and the seed): any I/O size reads it back.
check "ns 1 (buffered): 4 KiB writes over all 32 MiB, QD32, verified" \
	perf -r "$TRID" --nsid 1 -w write -V -o 4096 -q 32 -N 8192 --seed 3
check "ns 1: 128 KiB writes over the first 8 MiB, QD8" \
	perf -r "$TRID" --nsid 1 -w write -V -o 131072 -q 8 -N 64 --seed 3
check "ns 1: read back, QD32, 2 queues" \
	perf -r "$TRID" --nsid 1 -w read -V -o 4096 -q 32 -P 2 -N 8192 --seed 3
check "ns 2 (O_DIRECT): 4 KiB writes over all 32 MiB, QD32, verified" \
	perf -r "$TRID" --nsid 2 -w write -V -o 4096 -q 32 -N 8192 --seed 5
check "ns 2: 128 KiB writes over the first 8 MiB, QD8" \
	perf -r "$TRID" --nsid 2 -w write -V -o 131072 -q 8 -N 64 --seed 5
check "ns 2: 128 KiB read back, QD8, 2 queues" \
	perf -r "$TRID" --nsid 2 -w read -V -o 131072 -q 8 -P 2 -N 256 --seed 5
check "ns 3 (delay over a file): 4 KiB writes over all 8 MiB, QD16, verified" \
	perf -r "$TRID" --nsid 3 -w write -V -o 4096 -q 16 -N 2048 --seed 7
check "nvemud still serves" quiet rpc bdev_list

stop_daemon TERM
check "SIGTERM: nvemud exits 0" [ "$DRC" = 0 ]
check "a new nvemud on the same files" start_daemon -l none -u none
check "the same bdevs and namespaces" setup
check "ns 1: every block read back after the restart" \
	perf -r "$TRID" --nsid 1 -w read -V -o 65536 -q 8 -N 512 --seed 3
check "ns 2 (O_DIRECT): every block read back after the restart" \
	perf -r "$TRID" --nsid 2 -w read -V -o 131072 -q 8 -N 256 --seed 5
check "ns 3: every block read back after the restart" \
	perf -r "$TRID" --nsid 3 -w read -V -o 4096 -q 16 -N 2048 --seed 7
