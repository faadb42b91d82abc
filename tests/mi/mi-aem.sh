#!/bin/sh
# SPDX-License-Identifier: MIT
# NVMe-MI Asynchronous Event Messages from nvemud to a receiver that uses
# plain AF_MCTP calls through libnvemu-mctp-preload.so: health changed over
# RPC, the AEM checked byte by byte, acknowledgement and retransmission.
. "$(dirname "$0")/../daemon/lib.sh"

for v in MCTP_PRELOAD AEM_RECEIVER; do
	eval "p=\${$v:-}"
	if [ -z "$p" ] || [ ! -e "$p" ]; then
		nok "$v not set (a missing tool fails, never skips)"
		exit 1
	fi
done
MSOCK=$T/mctp.sock
NQN=nqn.2014-08.io.nvemu:default
PRELOAD=$MCTP_PRELOAD
asan=$(ldd "$MCTP_PRELOAD" 2>/dev/null | sed -n 's/.*\(libasan[^ ]*\) => \([^ ]*\).*/\2/p')
if [ -n "$asan" ]; then
	PRELOAD="$asan:$MCTP_PRELOAD"
	export ASAN_OPTIONS=detect_leaks=0
fi

check "nvemud starts with a private MCTP socket" start_daemon
# The receiver's TAP lines are numbered after ours.
R="$NVEMU_RPC -s $SOCK -t 10 nvme_subsystem_set_health --nqn $NQN --critical_warning 0"
LD_PRELOAD="$PRELOAD" NVEMU_MCTP_SOCKET="$MSOCK" "$AEM_RECEIVER" 1 9 \
	"$R --temperature 330 >/dev/null" "$R --temperature 331 >/dev/null" >"$T/recv.out" 2>"$T/recv.err"
rrc=$?
while IFS= read -r line; do
	case "$line" in
	"ok "*) ok "${line#ok [0-9]* - }" ;;
	"not ok "*) nok "${line#not ok [0-9]* - }" ;;
	"#"*) echo "$line" ;;
	esac
done <"$T/recv.out"
check "aem-receiver exits 0" [ "$rrc" -eq 0 ]
[ "$rrc" -eq 0 ] || diag "$(cat "$T/recv.err")"
call nvme_mi_endpoint_list
check "the endpoint counted transmitted messages" [ "$(jget 0.stats.tx_messages)" -ge 8 ]
expect_eq "nvme_mi_endpoint_list: 2 AEMs sent" "$(jget 0.aem.sent)" 2
# 1 before the ack (a second may cross it on a loaded machine), 4 never acknowledged.
rt=$(jget 0.aem.retransmitted)
check "nvme_mi_endpoint_list: $rt retransmitted (5, or 6 if one crossed the ack)" \
	test "$rt" -ge 5 -a "$rt" -le 6
