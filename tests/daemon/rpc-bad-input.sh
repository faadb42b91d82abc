#!/bin/sh
# SPDX-License-Identifier: MIT
# Bad input of every kind: per-method missing/mistyped/unknown params, ranges,
# malformed and oversized requests, unknown methods, clients that vanish or
# stall. The daemon must stay up and its state must not change.
. "$(dirname "$0")/lib.sh"

check "nvemud starts" start_daemon
NQN=nqn.2024-01.io.nvemu:bad
rpc bdev_malloc_create -b Mb --num_blocks 2048 >/dev/null
rpc bdev_malloc_create -b Mb2 --num_blocks 2048 >/dev/null
rpc nvme_subsystem_create --nqn $NQN >/dev/null
rpc nvme_namespace_create --nqn $NQN -b Mb -n 1 >/dev/null
CTRL=$(rpc nvme_controller_create --nqn $NQN | "$JSON_GET" .)
rpc nvme_controller_attach_ns -c "$CTRL" -n 1 >/dev/null
before=$(state)
check "setup done (controller $CTRL)" [ -n "$CTRL" ]

# raw METHOD PARAMS_JSON: send a request with exactly these params (bypasses CLI typing).
raw() {
	OUT=$("$RPC_RAW" -t 5 "$SOCK" "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"$1\",\"params\":$2}")
	RC=$?
}

# raw_err DESC CODE PATTERN METHOD PARAMS_JSON
raw_err() {
	raw "$4" "$5"
	_c=$(jget error.code 2>/dev/null)
	_m=$(jget error.message 2>/dev/null)
	if [ "$RC" -eq 0 ] && [ "$_c" = "$2" ] && printf '%s' "$_m" | grep -q -i -- "$3" &&
	   [ "$(jget id)" = 7 ]; then
		ok "$1"
	else
		nok "$1"
		diag "$4 $5 -> $OUT" "wanted error $2 matching '$3'"
	fi
}

# --- every method, driven from nvemu-rpc's own parameter table
call rpc_get_methods
ALL=$OUT
methods=$(jget -l .)
i=0
while [ $i -lt "$methods" ]; do
	m=$(printf '%s' "$ALL" | "$JSON_GET" $i.name 2>/dev/null || printf '%s' "$ALL" | "$JSON_GET" $i)
	i=$((i + 1))
	"$NVEMU_RPC" "$m" --help >"$T/help" 2>&1
	# "  -b, --name   string  help (required)" -> "name string req"
	sed -n 's/^ *\(-., \)\{0,1\}--\([a-z0-9_]*\) *\([a-z]*\) .*(required)$/\2 \3 req/p; t; s/^ *\(-., \)\{0,1\}--\([a-z0-9_]*\) *\([a-z]*\) .*$/\2 \3 opt/p' \
		"$T/help" >"$T/params"
	base=
	while read -r name type req; do
		[ "$req" = req ] || continue
		case $type in
		string) v='"x"' ;; int) v=1 ;; bool) v=false ;; uuid) v='"263826ad-19a3-4feb-bc25-4bc81ee7749e"' ;;
		esac
		base="$base\"$name\":$v,"
	done <"$T/params"

	raw_err "$m: an unknown parameter is named" -32602 "no_such_param" "$m" \
		"{${base}\"no_such_param\":1}"
	raw_err "$m: params that are not an object" -32602 "params" "$m" '[1,2]'
	while read -r name type req; do
		if [ "$req" = req ]; then
			# Drop it from the base: the daemon must name it as required.
			without=$(printf '%s' "$base" | sed "s/\"$name\":[^,]*,//")
			raw_err "$m: missing $name is named" -32602 "$name" "$m" "{${without%,}}"
		fi
		case $type in
		string) bad=123 ;; int) bad='"12"' ;; bool) bad='"maybe"' ;; uuid) bad='"not-a-uuid"' ;;
		esac
		with=$(printf '%s' "$base" | sed "s/\"$name\":[^,]*,//")
		raw_err "$m: mistyped $name ($type) is named" -32602 "$name" "$m" \
			"{${with}\"$name\":$bad}"
	done <"$T/params"
done

# --- ranges and the rules the issue names
raw_err "serial_number: at most 20 characters" -32602 "serial_number: at most 20 characters" \
	nvme_subsystem_create '{"nqn":"nqn.x:y","serial_number":"123456789012345678901"}'
raw_err "nn 0 is out of range" -32602 "nn" nvme_subsystem_create '{"nqn":"nqn.x:y","nn":0}'
raw_err "nn 0xFFFFFFFF is out of range" -32602 "nn" nvme_subsystem_create \
	'{"nqn":"nqn.x:y","nn":4294967295}'
raw_err "mnan 0 is out of range" -32602 "mnan" nvme_subsystem_create '{"nqn":"nqn.x:y","mnan":0}'
raw_err "empty nqn" -32602 "nqn" nvme_subsystem_create '{"nqn":""}'
raw_err "nsid 0" -32602 "nsid" nvme_namespace_create "{\"nqn\":\"$NQN\",\"bdev_name\":\"Mb2\",\"nsid\":0}"
raw_err "nsid 0xFFFFFFFF" -32602 "nsid" nvme_namespace_create \
	"{\"nqn\":\"$NQN\",\"bdev_name\":\"Mb2\",\"nsid\":4294967295}"
raw_err "negative nsid" -32602 "nsid" nvme_namespace_create \
	"{\"nqn\":\"$NQN\",\"bdev_name\":\"Mb2\",\"nsid\":-1}"
raw_err "fractional nsid" -32602 "nsid" nvme_namespace_create \
	"{\"nqn\":\"$NQN\",\"bdev_name\":\"Mb2\",\"nsid\":1.5}"
raw_err "malformed uuid" -32602 "uuid" nvme_namespace_create \
	"{\"nqn\":\"$NQN\",\"bdev_name\":\"Mb2\",\"nsid\":2,\"uuid\":\"263826ad-19a3-4feb-bc25-4bc81ee7749\"}"
raw_err "num_queues 0" -32602 "num_queues" nvme_controller_create "{\"nqn\":\"$NQN\",\"num_queues\":0}"
raw_err "num_queues 32" -32602 "num_queues" nvme_controller_create "{\"nqn\":\"$NQN\",\"num_queues\":32}"
raw_err "num_queues 128 without a vfio-user socket" -32602 "socket" nvme_controller_create \
	"{\"nqn\":\"$NQN\",\"num_queues\":128}"
raw_err "mdts 0" -32602 "mdts" nvme_controller_create "{\"nqn\":\"$NQN\",\"mdts\":0}"
raw_err "mdts 8" -32602 "mdts" nvme_controller_create "{\"nqn\":\"$NQN\",\"mdts\":8}"
raw_err "bool given as 2" -32602 "suspended" nvme_controller_create "{\"nqn\":\"$NQN\",\"suspended\":2}"
raw_err "num_blocks 0" -32602 "num_blocks" bdev_malloc_create '{"name":"Z","num_blocks":0}'
raw_err "block_size 100" -32602 "block_size" bdev_malloc_create '{"name":"Z","num_blocks":8,"block_size":100}'
raw_err "block_size not a power of two" -32602 "block_size" bdev_malloc_create \
	'{"name":"Z","num_blocks":8,"block_size":1000}'
raw bdev_malloc_create '{"name":"a\u0000b","num_blocks":8}'
check "a string with an embedded NUL is refused (-32602 or -32700)" \
	either "$(jget error.code)" = -32602 "$(jget error.code)" = -32700
raw_err "percentage_used 256" -32602 "percentage_used" nvme_subsystem_set_health \
	"{\"nqn\":\"$NQN\",\"percentage_used\":256}"
raw_err "critical_warning 256" -32602 "critical_warning" nvme_subsystem_set_health \
	"{\"nqn\":\"$NQN\",\"critical_warning\":256}"

# --- domain errors have their own codes
expect_err "unknown nqn" -32000 "nqn" nvme_namespace_list --nqn nqn.none:x
expect_err "unknown bdev" -32000 "bdev_name" nvme_namespace_create --nqn $NQN -b NoSuch -n 2
expect_err "a bdev used twice" -32001 "Mb" nvme_namespace_create --nqn $NQN -b Mb -n 2
expect_err "duplicate subsystem" -32001 "$NQN" nvme_subsystem_create --nqn $NQN
expect_err "duplicate bdev" -32001 "Mb" bdev_malloc_create -b Mb --num_blocks 8
expect_err "unknown controller" -32000 "NVMeCtrl77" nvme_controller_destroy -c NVMeCtrl77
expect_err "modify: num_queues out of range" -32602 "num_queues" \
	nvme_controller_modify -c "$CTRL" --num_queues 32
expect_err "bdev_file_create on a missing file" -32 "$T/none" bdev_file_create -b F \
	--filename "$T/none"
expect_err "unknown method (sent as is by nvemu-rpc)" -32601 "no_such_method" no_such_method --x 1

# --- the envelope
rawb() {
	OUT=$("$RPC_RAW" -t 5 "$@")
	RC=$?
}
rawb -h "$SOCK" '{"jsonrpc":"2.0","id":1,"method":'
check "truncated JSON then end of input: answered -32700 or closed" \
	either "$(jget error.code 2>/dev/null)" = -32700 "$OUT" = closed
rawb "$SOCK" '{"jsonrpc":"2.0","id":1,"method":"bdev_list",}'
expect_eq "malformed JSON (trailing comma): -32700 parse error" "$(jget error.code)" -32700
rawb "$SOCK" "$(printf 'this is not json}\n')"
expect_eq "garbage: -32700 parse error" "$(jget error.code)" -32700
rawb -t 2 "$SOCK" "$(printf 'this is not json\n')"
expect_eq "garbage without a brace, newline-terminated: -32700 parse error" \
	"$(jget error.code 2>/dev/null)" -32700
rawb "$SOCK" '[]'
expect_eq "batch (empty array): -32600" "$(jget error.code)" -32600
rawb -t 2 -h "$SOCK" '"just a string"'
expect_eq "a string (valid JSON, not a request), then end of input: -32600" \
	"$(jget error.code 2>/dev/null)" -32600
rawb -t 2 "$SOCK" "$(printf '42\n')"
expect_eq "a number, newline-terminated: -32600" "$(jget error.code 2>/dev/null)" -32600
rawb "$SOCK" '{"jsonrpc":"1.0","id":1,"method":"bdev_list"}'
expect_eq "jsonrpc 1.0: -32600" "$(jget error.code)" -32600
rawb "$SOCK" '{"jsonrpc":"2.0","id":1}'
expect_eq "no method: -32600" "$(jget error.code)" -32600
rawb "$SOCK" '{"jsonrpc":"2.0","id":{"a":1},"method":"bdev_list"}'
expect_eq "object id: -32600" "$(jget error.code)" -32600
rawb "$SOCK" '{"jsonrpc":"2.0","id":1,"method":5}'
expect_eq "numeric method: -32600" "$(jget error.code)" -32600
rawb "$SOCK" '{"jsonrpc":"2.0","id":"abc","method":"no_such"}'
expect_eq "unknown method: -32601, string id echoed" "$(jget error.code) $(jget id)" "-32601 abc"
rawb -t 1 "$SOCK" '{"jsonrpc":"2.0","method":"bdev_list"}'
check "a notification gets no reply" either "$OUT" = timeout "$OUT" = closed
rawb -m 2 "$SOCK" '{"jsonrpc":"2.0","id":1,"method":"bdev_list"}{"jsonrpc":"2.0","id":2,"method":"rpc_get_methods"}'
expect_eq "two pipelined requests in one write: two replies in order" \
	"$(printf '%s\n' "$OUT" | sed -n 1p | "$JSON_GET" id) $(printf '%s\n' "$OUT" | sed -n 2p | "$JSON_GET" id)" "1 2"
rawb "$SOCK" "$(printf '\n\n  {"jsonrpc":"2.0","id":3,"method":"bdev_list"}')"
expect_eq "leading whitespace is fine" "$(jget id)" 3

rawb -b 2097152 "$SOCK" '{"jsonrpc":"2.0","id":1,"method":"bdev_list","params":{"name":"'
check "a 2 MiB request is refused (error reply or close)" \
	either "$OUT" = closed "$(jget error.code 2>/dev/null)" = -32600
diag "2 MiB request -> $(printf '%s' "$OUT" | cut -c1-200)"
check "daemon alive after the oversized request" quiet rpc bdev_list

# --- clients that go away or stall
"$RPC_RAW" -c "$SOCK" '{"jsonrpc":"2.0","id":1,"method":"bdev_malloc_create","params":{"name":"Half"' >/dev/null
check "disconnect mid-request: daemon alive" quiet rpc bdev_list
expect_err "... and the half request did nothing" -32000 "Half" bdev_delete -b Half
"$RPC_RAW" -c "$SOCK" '{"jsonrpc":"2.0","id":1,"method":"bdev_malloc_create","params":{"name":"Gone","num_blocks":8}}' >/dev/null
sleep 0.2
check "disconnect before reading the reply: daemon alive (no SIGPIPE death)" quiet rpc bdev_list
rpc bdev_delete -b Gone >/dev/null 2>&1

"$RPC_RAW" -S 4 "$SOCK" '{"jsonrpc":"2.0","id":1,"method":"bdev_li' >/dev/null &
stall=$!
"$RPC_RAW" -S 4 -b 500000 "$SOCK" '{"jsonrpc":"2.0","id":1,"method":"bdev_list","params":{"x":"' >/dev/null &
stall2=$!
sleep 0.3
t0=$(date +%s%N)
OUT=$("$NVEMU_RPC" -s "$SOCK" -t 2 bdev_list 2>&1)
RC=$?
t1=$(date +%s%N)
check "a stalled half request does not block another client" [ $RC -eq 0 ]
check "... served in under a second ($(((t1 - t0) / 1000000)) ms)" [ $(((t1 - t0) / 1000000)) -lt 1000 ]
OUT=$("$RPC_RAW" -n 64 -t 5 "$SOCK" '{"jsonrpc":"2.0","id":1,"method":"bdev_list"}')
expect_eq "64 clients at once are all answered" "$OUT" 64
kill $stall $stall2 2>/dev/null
wait $stall $stall2 2>/dev/null

# --- nvemu-rpc's own checks (never reach the daemon)
call nvme_namespace_create --nqn $NQN -b Mb2 -n abc
check "nvemu-rpc: a non-integer for an int param is refused locally (exit 2)" \
	sh -c '[ "$1" -eq 2 ] && printf "%s" "$2" | grep -q nsid' - "$RC" "$ERR"
call nvme_namespace_create --nqn $NQN -b Mb2 -n 2 --bogus 1
check "nvemu-rpc: an unknown --param of a known method is named (exit 2)" \
	sh -c '[ "$1" -eq 2 ] && printf "%s" "$2" | grep -q bogus' - "$RC" "$ERR"
call nvme_controller_create --nqn $NQN --suspended maybe
check "nvemu-rpc: a stray argument is refused" [ "$RC" -eq 2 ]
call bdev_list -j '{bad json'
check "nvemu-rpc: -j with invalid JSON is refused" [ "$RC" -eq 2 ]

check "daemon still running" daemon_alive
expect_eq "state unchanged after all of the above" "$(state)" "$before"
