#!/bin/sh
# SPDX-License-Identifier: MIT
# The userspace AF_MCTP: MCTP control messages through
# libnvemu-mctp-preload.so and the router, checked byte for byte, plus the
# timeouts of a bus where nobody owns the EID.
. "$(dirname "$0")/lib.sh"

start_server

# expect DESCRIPTION WANT NET EID TYPE HEX [TIMEOUT]
expect() {
	d=$1
	want=$2
	shift 2
	got=$(pre "$MCTP_CTL" "$@" 2>"$T/err")
	if [ "$got" = "$want" ]; then
		ok "$d"
	else
		not_ok "$d: got '$got', want '$want'"
		sed 's/^/#   /' "$T/err"
	fi
}

expect "Get Endpoint ID" "eid=9 010200090200" 1 9 0 8102
expect "Get Message Type Support lists control and NVMe-MI" "eid=9 020500020004" 1 9 0 8205
expect "Get MCTP Version Support (base spec 1.0 to 1.3.1)" "eid=9 03040004f1f0ff00f1f1ff00f1f2ff00f1f3f100" 1 9 0 8304ff
expect "Get MCTP Version Support (NVMe-MI 1.2)" "eid=9 04040001f1f2f000" 1 9 0 840404
expect "Get MCTP Version Support (unsupported type)" "eid=9 050480" 1 9 0 850405
expect "unsupported control command" "eid=9 060a05" 1 9 0 860a
expect "Set Endpoint ID with the broadcast EID" "eid=9 070102" 1 9 0 870100ff

uuid=$(pre "$MCTP_CTL" 1 9 0 8803)
case "$uuid" in
"eid=9 080300"????????????????????????????????) ok "Get Endpoint UUID: 16 bytes" ;;
*) not_ok "Get Endpoint UUID: $uuid" ;;
esac

# Nobody owns EID 10, nor anything on network 2: a timeout, as on a real bus.
pre "$MCTP_CTL" 1 10 0 8102 300 >/dev/null 2>&1
[ $? -eq 2 ] && ok "EID nobody owns times out" || not_ok "EID nobody owns"
pre "$MCTP_CTL" 2 9 0 8102 300 >/dev/null 2>&1
[ $? -eq 2 ] && ok "network nobody uses times out" || not_ok "other network"

# A bus owner moves the endpoint; the route follows.
expect "Set Endpoint ID 0x20" "eid=32 090100002000" 1 9 0 89010020
expect "Get Endpoint ID at the new EID" "eid=32 0a0200200300" 1 32 0 8a02
pre "$MCTP_CTL" 1 9 0 8102 300 >/dev/null 2>&1
[ $? -eq 2 ] && ok "old EID no longer answers" || not_ok "old EID still answers"
expect "Set Endpoint ID back to 9" "eid=9 0b0100000900" 1 32 0 8b010009

# Several clients at once, each with its own tag.
pids=
for i in 1 2 3 4 5 6; do
	pre "$MCTP_CTL" 1 9 0 8102 >"$T/par.$i" 2>"$T/par.$i.err" &
	pids="$pids $!"
done
wait $pids
wait_ok=0
for i in 1 2 3 4 5 6; do
	[ "$(cat "$T/par.$i")" = "eid=9 010200090200" ] && wait_ok=$((wait_ok + 1))
done
[ $wait_ok -eq 6 ] && ok "six concurrent clients answered" ||
	not_ok "concurrent: $wait_ok/6: $(cat "$T"/par.1 "$T"/par.1.err)"

# Tag exhaustion: EAGAIN from sendmsg, as AF_MCTP; responses stay queued.
if pre "$MCTP_TAGS" 1 9 >"$T/tags.out" 2>"$T/tags.err"; then
	ok "tag exhaustion: $(grep -c '^ok' "$T/tags.out") checks of mctp-tags passed"
else
	not_ok "tag exhaustion (mctp-tags)"
	grep -v '^ok' "$T/tags.out" | sed 's/^/#   /'
	sed 's/^/#   /' "$T/tags.err"
fi
# The eight tags were taken by a socket that is closed now: others work again.
expect "after the tag holder closed, Get Endpoint ID" "eid=9 010200090200" 1 9 0 8102

# No router: socket(AF_MCTP) fails and says where it looked.
if LD_PRELOAD="$PRELOAD" NVEMU_MCTP_SOCKET="$T/none" "$MCTP_CTL" 1 9 0 8102 \
	>/dev/null 2>"$T/err"; then
	not_ok "socket() without a router"
else
	grep -q "no MCTP router at $T/none" "$T/err" && ok "socket() without a router fails" ||
		not_ok "socket() without a router: $(cat "$T/err")"
fi

# Without the preload, this kernel has no AF_MCTP at all.
"$MCTP_CTL" 1 9 0 8102 >/dev/null 2>&1
[ $? -eq 1 ] && ok "no AF_MCTP without the preload" || not_ok "AF_MCTP without preload?"
