#!/bin/sh
# SPDX-License-Identifier: MIT
# nvemud's life: options, the default configuration, socket mode, one daemon
# per socket, stale sockets replaced, SIGTERM/SIGINT remove the socket.
. "$(dirname "$0")/lib.sh"

"$NVEMUD" --help >"$T/help" 2>&1
check "nvemud --help exits 0 and mentions -r and -c" \
	sh -c '[ $1 -eq 0 ] && grep -q -- "-r" "$2" && grep -q -- "-c" "$2"' - $? "$T/help"
v=$("$NVEMUD" --version 2>&1)
check "nvemud --version prints a version ($v)" sh -c 'printf "%s" "$1" | grep -q "[0-9]\.[0-9]"' - "$v"
"$NVEMUD" --no-such-option >/dev/null 2>&1
check "nvemud with an unknown option exits non-zero" [ $? -ne 0 ]
"$NVEMUD" -r "$SOCK" -c "$T/missing.json" >"$T/out" 2>&1
rc=$?
check "nvemud -c with a missing file exits non-zero" [ $rc -ne 0 ]
check "... and leaves no socket behind" [ ! -e "$SOCK" ]

check "nvemud starts with the default configuration" start_daemon
mode=$(stat -c %a "$SOCK")
expect_eq "socket mode is 0600" "$mode" 600

call nvme_subsystem_list
expect_eq "default: one subsystem" "$(jget -l .)" 1
NQN=$(jget 0.nqn)
call nvme_namespace_list
expect_eq "default: namespaces of 1024 and 2048 blocks" "$(jget 0.num_blocks) $(jget 1.num_blocks)" \
	"1024 2048"
expect_eq "default: the first is attached, the second not" \
	"$(jget -l 0.controllers) $(jget -l 1.controllers)" "1 0"
call nvme_controller_list
expect_eq "default: one controller" "$(jget -l .)" 1
call nvme_subsystem_list
check "default: a PCIe port and a two-wire port" \
	sh -c 'printf "%s" "$1" | grep -q pcie && printf "%s" "$1" | grep -q two_wire' - "$(jget 0.ports)"
call rpc_get_methods
for m in nvme_subsystem_create nvme_subsystem_destroy nvme_subsystem_list bdev_null_create \
	bdev_malloc_create bdev_file_create bdev_delete bdev_list nvme_namespace_create \
	nvme_namespace_destroy nvme_namespace_list nvme_controller_create nvme_controller_destroy \
	nvme_controller_suspend nvme_controller_resume nvme_controller_snapshot_get \
	nvme_controller_list nvme_controller_modify nvme_controller_attach_ns \
	nvme_controller_detach_ns nvme_controller_debug_get nvme_controller_iostat save_config \
	rpc_get_methods; do
	printf '%s' "$OUT" | grep -q "\"$m\"" || missing="${missing:-} $m"
done
expect_eq "rpc_get_methods lists every control-plane method" "${missing:-}" ""

# A second daemon on the same live socket must refuse and leave the first alone.
"$NVEMUD" -r "$SOCK" >"$T/second" 2>&1 &
p2=$!
i=0
while kill -0 $p2 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
if kill -0 $p2 2>/dev/null; then
	kill -KILL $p2
	nok "a second nvemud on a live socket exits"
else
	wait $p2
	rc=$?
	check "a second nvemud on a live socket exits non-zero" [ $rc -ne 0 ]
fi
check "... with a message naming the socket" grep -q "$SOCK" "$T/second"
diag "$(cat "$T/second")"
check "the first daemon still serves" quiet rpc nvme_subsystem_list

check "SIGTERM stops nvemud" stop_daemon TERM
expect_eq "exit status 0 after SIGTERM" "$DRC" 0
check "SIGTERM removed the socket" [ ! -e "$SOCK" ]

check "nvemud restarts" start_daemon
check "SIGINT stops nvemud" stop_daemon INT
expect_eq "exit status 0 after SIGINT" "$DRC" 0
check "SIGINT removed the socket" [ ! -e "$SOCK" ]

# SIGKILL leaves a stale socket file: the next daemon replaces it.
start_daemon
stop_daemon KILL
check "SIGKILL leaves the socket file" [ -S "$SOCK" ]
check "a new nvemud replaces the stale socket" start_daemon
check "and serves" quiet rpc bdev_list

# A regular file in the way is not a socket: it must not be deleted.
stop_daemon TERM
echo keep >"$T/file"
"$NVEMUD" -r "$T/file" >"$T/out" 2>&1 &
p3=$!
sleep 0.5
if kill -0 $p3 2>/dev/null; then
	kill -TERM $p3; wait $p3
	nok "nvemud refuses a path that is a regular file"
else
	ok "nvemud refuses a path that is a regular file"
fi
expect_eq "... and leaves the file alone" "$(cat "$T/file" 2>/dev/null)" keep
