#!/bin/sh
# SPDX-License-Identifier: MIT
# A hostile or careless local client must neither crash nor stall nvemud:
# FIFOs as files, a configuration that loads itself, a 1 MiB request in tiny
# pieces, running out of descriptors, control characters in logged strings.
. "$(dirname "$0")/lib.sh"

if [ -z "${RPC_STRESS:-}" ] || [ ! -x "$RPC_STRESS" ]; then
	nok "RPC_STRESS not set or not executable"
	exit 1
fi

NQN=nqn.2014-08.io.nvemu:default

# alive DESC: the daemon still runs and answers at once.
alive() {
	if daemon_alive && "$NVEMU_RPC" -s "$SOCK" -t 3 rpc_get_methods >/dev/null 2>&1; then
		ok "$1"
	else
		nok "$1"
	fi
}

# fast_err DESC CODE PATTERN METHOD ARGS...: an error within 5 s (a blocked daemon times out).
fast_err() {
	_d=$1 _code=$2 _pat=$3
	shift 3
	OUT=$("$NVEMU_RPC" -s "$SOCK" -t 5 "$@" 2>"$T/err")
	RC=$?
	ERR=$(cat "$T/err")
	if [ "$RC" -eq 1 ] && printf '%s' "$ERR" | grep -q -- "^error $_code" &&
	   printf '%s' "$ERR" | grep -q -i -- "$_pat"; then
		ok "$_d"
	else
		nok "$_d"
		diag "$* -> rc $RC: $ERR" "wanted: error $_code matching '$_pat'"
	fi
}

check "nvemud starts (debug log)" start_daemon -v -v
mkfifo "$T/fifo"

# ---- FIFOs are refused before anything blocks on them
fast_err "load_config of a FIFO: refused, naming the field" -32602 \
	"filename: .*fifo is not a regular file" load_config -f "$T/fifo"
alive "... and the daemon still answers"
fast_err "nvme_controller_create --snapshot FIFO: refused, naming the field" -32602 \
	"snapshot: .*fifo is not a regular file" nvme_controller_create --nqn $NQN --snapshot "$T/fifo"
alive "... and the daemon still answers"
# Read-only: an O_RDONLY open of a FIFO waits for a writer.
fast_err "bdev_file_create on a FIFO: refused" -3 "fifo" \
	bdev_file_create -b Fifo0 -f "$T/fifo" --read_only
# Should the open have blocked after all, a writer releases it, so the rest still runs.
timeout 2 sh -c ': >"$1"' - "$T/fifo" 2>/dev/null
alive "... and the daemon still answers"
fast_err "save_config to a FIFO: refused" -32602 "not a regular file" save_config -f "$T/fifo"
alive "... and the daemon still answers"
truncate -s 1M "$T/disk.img"
expect_ok "a file bdev" bdev_file_create -b Disk0 -f "$T/disk.img"
fast_err "save_config over a bdev's backing file: refused" -32602 \
	"backing file of bdev Disk0" save_config -f "$T/disk.img"
check "... which is untouched" [ "$(stat -c %s "$T/disk.img")" = 1048576 ]

# ---- a configuration that loads itself (directly, or through another file)
cat >"$T/self.json" <<EOF
{"nvemu_config": 1, "calls": [{"method": "load_config", "params": {"filename": "$T/self.json"}}]}
EOF
fast_err "load_config of a file that loads itself: refused, naming the method" -32602 \
	"calls\[0\] load_config: load_config: not allowed inside a configuration" \
	load_config -f "$T/self.json"
cat >"$T/a.json" <<EOF
{"nvemu_config": 1, "calls": [{"method": "load_config", "params": {"filename": "$T/b.json"}}]}
EOF
cat >"$T/b.json" <<EOF
{"nvemu_config": 1, "calls": [{"method": "load_config", "params": {"filename": "$T/a.json"}}]}
EOF
fast_err "load_config through a chain: refused" -32602 "load_config: not allowed" \
	load_config -f "$T/a.json"
alive "the daemon survived both"

# -c with a FIFO: refused at once instead of waiting for a writer forever.
"$NVEMUD" -r "$T/sock2" -c "$T/fifo" -l none -m none -u none >"$T/c-fifo.log" 2>&1 &
cpid=$!
i=0
while kill -0 $cpid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
if kill -0 $cpid 2>/dev/null; then
	kill -KILL $cpid
	nok "nvemud -c FIFO exits at once"
else
	wait $cpid
	check "nvemud -c FIFO exits non-zero at once" [ $? -ne 0 ]
fi
check "... saying why" grep -q "not a regular file" "$T/c-fifo.log"

# ---- control characters in peer-supplied strings are escaped in the log
"$RPC_RAW" -t 5 "$SOCK" \
	'{"jsonrpc":"2.0","id":1,"method":"x\nnvemud: error: forged line"}' >/dev/null 2>&1
sleep 0.2
check "a newline in a method name does not start a log line" \
	not grep -q "^nvemud: error: forged line" "$T/daemon.log"
check "... it is logged escaped" grep -q 'x\\x0anvemud: error: forged line' "$T/daemon.log"

# ---- a 1 MiB request in 1..16-byte pieces while another client is served
if out=$("$RPC_STRESS" pieces "$SOCK" 2>&1); then
	ok "a 1 MiB request in small pieces: the other client is answered throughout ($out)"
else
	nok "a 1 MiB request in small pieces"
	diag "$out"
fi
alive "the daemon still answers"
check "SIGTERM" stop_daemon TERM

# ---- out of descriptors: the accept loop backs off instead of spinning
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}
(ulimit -n 40 && exec "$NVEMUD" -r "$SOCK" -l none -m none -u none) >>"$T/fd.log" 2>&1 &
DPID=$!
if wait_up; then ok "nvemud starts with 40 descriptors"; else nok "nvemud starts with 40 descriptors"; fi
"$RPC_STRESS" hold "$SOCK" 100 3 >"$T/held" &
HPID=$!
sleep 1
t0=$(cpu_ticks "$DPID")
sleep 1.5
t1=$(cpu_ticks "$DPID")
wait "$HPID"
diag "connections: $(cat "$T/held"), daemon CPU over 1.5 s at the limit: $((t1 - t0)) ticks"
check "at the descriptor limit the daemon does not spin (under 0.3 s CPU in 1.5 s)" \
	[ $((t1 - t0)) -lt 30 ]
n=$(grep -c "RPC accept: .*pausing accepts" "$T/fd.log")
check "one rate-limited log line about it (got $n)" [ "$n" -eq 1 ]
sleep 0.3
alive "accepting again once descriptors are free"
cat "$T/fd.log" >>"$T/daemon.log"
stop_daemon TERM
