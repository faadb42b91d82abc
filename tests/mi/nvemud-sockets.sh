#!/bin/sh
# SPDX-License-Identifier: MIT
# The sockets nvemud creates for local peers (the AF_MCTP router's, vfio-user
# ones): owner-only even under umask 0, a live one of another nvemud is never
# taken over (the first keeps serving), and the stale ones a killed nvemud
# left behind are replaced on restart.
. "$(dirname "$0")/../daemon/lib.sh"

for v in MCTP_PRELOAD MCTP_CTL; do
	eval "p=\${$v:-}"
	if [ -z "$p" ] || [ ! -e "$p" ]; then
		nok "$v not set (a missing tool fails, never skips)"
		exit 1
	fi
done

MSOCK=$T/mctp.sock
DEF=$T/nvemu-vfu-NVMeCtrl1.sock
NQN=nqn.2014-08.io.nvemu:default

# In a sanitizer build the preload library needs the ASan runtime first.
PRELOAD=$MCTP_PRELOAD
asan=$(ldd "$MCTP_PRELOAD" 2>/dev/null | sed -n 's/.*\(libasan[^ ]*\) => \([^ ]*\).*/\2/p')
if [ -n "$asan" ]; then
	PRELOAD="$asan:$MCTP_PRELOAD"
	export ASAN_OPTIONS=detect_leaks=0
fi

get_eid() {
	LD_PRELOAD="$PRELOAD" NVEMU_MCTP_SOCKET="$MSOCK" "$MCTP_CTL" 1 9 0 8102 2>"$T/ctl.err"
}

mode() {
	stat -c %a "$1" 2>/dev/null
}

umask 0
check "nvemud starts under umask 0" start_daemon
expect_ok "a controller on a socket created under umask 0" \
	nvme_controller_create --nqn $NQN --socket "$T/c2.sock"
umask 022
expect_eq "the MCTP socket is owner-only" "$(mode "$MSOCK")" 600
expect_eq "the default vfio-user socket is owner-only" "$(mode "$DEF")" 600
expect_eq "a created vfio-user socket is owner-only" "$(mode "$T/c2.sock")" 600
expect_eq "the RPC socket is owner-only" "$(mode "$SOCK")" 600
expect_eq "MCTP answers: Get Endpoint ID" "$(get_eid)" "eid=9 010200090200"

# A second nvemud on the live MCTP socket: refused, nothing taken over.
ino=$(stat -c %i "$MSOCK")
"$NVEMUD" -r "$T/sock2" -l none -u none -m "$MSOCK" >"$T/daemon2.log" 2>&1 &
D2=$!
_i=0
while kill -0 "$D2" 2>/dev/null && [ $_i -lt 200 ]; do
	sleep 0.05
	_i=$((_i + 1))
done
if kill -0 "$D2" 2>/dev/null; then
	kill "$D2"
	nok "a second nvemud on the live MCTP socket is refused (it kept running)"
else
	wait "$D2"
	check "a second nvemud on the live MCTP socket is refused" [ $? -ne 0 ]
fi
check "  saying another process serves it" grep -q "another process is serving it" \
	"$T/daemon2.log"
expect_eq "  the socket is still the first nvemud's" "$(stat -c %i "$MSOCK")" "$ino"
expect_eq "  which still answers" "$(get_eid)" "eid=9 010200090200"

# kill -9 leaves the socket files behind; a restart replaces them.
stop_daemon KILL
check "kill -9 left the MCTP socket behind" [ -S "$MSOCK" ]
check "and the vfio-user socket" [ -S "$DEF" ]
check "nvemud restarts over the stale sockets" start_daemon
expect_eq "the MCTP router serves again" "$(get_eid)" "eid=9 010200090200"
call nvme_controller_list -c NVMeCtrl1
expect_eq "NVMeCtrl1 is served on its socket again" "$(jget 0.socket)" "$DEF"

# A file that is not a socket is never removed.
stop_daemon
: >"$T/plain"
"$NVEMUD" -r "$T/sock4" -l none -u none -m "$T/plain" >"$T/daemon4.log" 2>&1
check "nvemud refuses an MCTP path that is a regular file" [ $? -ne 0 ]
check "  and leaves the file alone" [ -f "$T/plain" ]
