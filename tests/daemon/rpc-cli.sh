#!/bin/sh
# SPDX-License-Identifier: MIT
# nvemu-rpc itself: help, typing of values, -j, errors, and that its method
# table and the daemon's agree (every method, every parameter).
. "$(dirname "$0")/lib.sh"

"$NVEMU_RPC" --help >"$T/help"
check "nvemu-rpc --help exits 0" [ $? -eq 0 ]
check "--help lists nvme_controller_attach_ns" grep -q "nvme_controller_attach_ns" "$T/help"
"$NVEMU_RPC" nvme_controller_attach_ns --help >"$T/h"
check "per-method --help shows SNAP's -c/-n aliases with types" \
	sh -c 'grep -q -- "-c, --ctrl *string" "$1" && grep -q -- "-n, --nsid *int" "$1"' - "$T/h"
"$NVEMU_RPC" >/dev/null 2>&1
expect_eq "no method: usage error, exit 2" $? 2
"$NVEMU_RPC" -s "$T/nowhere" bdev_list >/dev/null 2>"$T/e"
rc=$?
check "no daemon: exit 1 with a clear message" \
	sh -c '[ "$1" -eq 1 ] && grep -q "cannot connect" "$2"' - $rc "$T/e"

check "nvemud starts" start_daemon

# The two tables agree: every daemon method has help, every CLI parameter is known.
call rpc_get_methods
ALL=$OUT
n=$(jget -l .)
i=0
nohelp=
unknown=
while [ $i -lt "$n" ]; do
	m=$(printf '%s' "$ALL" | "$JSON_GET" $i)
	i=$((i + 1))
	"$NVEMU_RPC" "$m" --help >"$T/h" 2>&1
	if grep -q "no help" "$T/h"; then
		nohelp="$nohelp $m"
		continue
	fi
	for p in $(sed -n 's/^ *\(-., \)\{0,1\}--\([a-z0-9_]*\) .*$/\2/p' "$T/h"); do
		r=$("$RPC_RAW" "$SOCK" "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$m\",\"params\":{\"$p\":null}}")
		case $r in
		*"unknown parameter"*) unknown="$unknown $m.$p" ;;
		esac
	done
done
expect_eq "every daemon method has nvemu-rpc --help" "$nohelp" ""
expect_eq "every nvemu-rpc parameter is known to the daemon" "$unknown" ""
missing=
for m in $(sed -n 's/^  \([a-z_0-9]*\)  .*$/\1/p' "$T/help"); do
	printf '%s' "$ALL" | grep -q "\"$m\"" || missing="$missing $m"
done
expect_eq "every method nvemu-rpc knows is served by the daemon" "$missing" ""

# Typing of values
expect_ok "hex integers (0x100) and --dash-names" bdev_malloc_create --name Hex --num-blocks 0x100
call bdev_list -b Hex
expect_eq "0x100 arrived as 256" "$(jget 0.num_blocks)" 256
expect_ok "decimal with a leading zero is decimal" bdev_malloc_create --name Dec --num_blocks 010
call bdev_list -b Dec
expect_eq "010 arrived as 10" "$(jget 0.num_blocks)" 10
call bdev_list -b Dec
check "result is pretty-printed (indented, several lines)" \
	sh -c '[ $(printf "%s\n" "$1" | wc -l) -gt 3 ] && printf "%s" "$1" | grep -q "^    \""' - "$OUT"
NQN=nqn.2024-01.io.nvemu:cli
expect_ok "-j raw params" nvme_subsystem_create -j "{\"nqn\":\"$NQN\",\"serial_number\":\"RAW1\"}"
call nvme_subsystem_list
i=$(jget -f nqn=$NQN .)
expect_eq "-j params arrived" "$(jget $i.serial_number)" RAW1
expect_ok "a bool flag without value (--suspended)" nvme_controller_create --nqn $NQN --suspended
C1=$(jget .)
call nvme_controller_list --ctrl "$C1"
expect_eq "--suspended arrived as true" "$(jget 0.suspended)" true
expect_ok "--suspended=false and -j merged, --param wins" nvme_controller_create \
	-j "{\"nqn\":\"nqn.none:x\",\"suspended\":true}" --nqn $NQN --suspended=false
C2=$(jget .)
call nvme_controller_list --ctrl "$C2"
expect_eq "--suspended=false arrived as false" "$(jget 0.suspended)" false
expect_ok "--suspended 0 / --compare true" nvme_controller_create --nqn $NQN --suspended 0 --compare true
check "NVEMU_RPC_SOCKET picks the socket" quiet env NVEMU_RPC_SOCKET="$SOCK" "$NVEMU_RPC" bdev_list
expect_err "unknown methods are sent; the daemon answers -32601" -32601 "frobnicate" frobnicate --x 1
expect_err "daemon errors: 'error CODE: MESSAGE', exit 1" -32602 "num_blocks" \
	bdev_malloc_create -b Zero --num_blocks 0
check "... and nothing on stdout" [ -z "$OUT" ]
call -t 0 bdev_list
check "-t 0 is a usage error" [ "$RC" -eq 2 ]

# --- bash completion (tools/nvemu-rpc.bash): methods and parameters
COMPL=$(dirname "$0")/../../tools/nvemu-rpc.bash
complete_words() { # words...: the completions bash offers for the last word
	PATH="$(dirname "$NVEMU_RPC"):$PATH" bash -c '. "$1"; shift; COMP_WORDS=("$@");
		COMP_CWORD=$(($# - 1)); _nvemu_rpc; printf "%s\n" "${COMPREPLY[@]}"' - "$COMPL" "$@"
}
expect_eq "completion: method names" "$(complete_words nvemu-rpc -s "$SOCK" nvme_subsystem_cr)" \
	nvme_subsystem_create
expect_eq "completion: a method's parameters" \
	"$(complete_words nvemu-rpc -s "$SOCK" nvme_namespace_create --ptpl | tr '\n' ' ')" "--ptpl_file "
"$NVEMU_RPC" -s "$SOCK" rpc_get_methods | sed -n 's/^ *"\([a-z_0-9]*\)",\{0,1\}$/\1/p' |
	sort -u >"$T/methods"
complete_words nvemu-rpc -s "$SOCK" "" | sort -u >"$T/offered"
check "completion: every method rpc_get_methods lists is offered" \
	sh -c '[ -s "$1" ] && [ -z "$(comm -23 "$1" "$2")" ]' - "$T/methods" "$T/offered"
