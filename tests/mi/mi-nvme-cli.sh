#!/bin/sh
# SPDX-License-Identifier: MIT
# Unmodified Debian nvme-cli managing nvemu out-of-band: NVMe-MI over MCTP
# through libnvemu-mctp-preload.so, each answer checked against the model
# (seed 000: controller 1, namespaces of 1024 and 2048 blocks, the first
# attached).
. "$(dirname "$0")/lib.sh"

if ! command -v nvme >/dev/null 2>&1; then
	not_ok "nvme-cli not installed (a missing tool fails, never skips)"
	exit 1
fi

start_server
DEV=mctp:1,9

# json_field FILE KEY: the value of "KEY":VALUE in nvme-cli's JSON.
json_field() {
	sed -n "s/^ *\"$2\" *: *\"\{0,1\}\([^\",]*\).*/\1/p" "$1" | head -n 1 | sed 's/ *$//'
}

# With the probe libnvme-mi does at open (an Identify Controller).
if pre nvme id-ctrl $DEV -o json >"$T/idc" 2>"$T/err"; then
	sn=$(json_field "$T/idc" sn)
	mn=$(json_field "$T/idc" mn)
	cntlid=$(json_field "$T/idc" cntlid)
	if [ "$sn" = "$SN" ] && [ "$mn" = "$MN" ] && [ "$cntlid" = 1 ]; then
		ok "id-ctrl: sn $sn, mn $mn, cntlid 1"
	else
		not_ok "id-ctrl: sn '$sn' mn '$mn' cntlid '$cntlid', want '$SN' '$MN' 1"
	fi
else
	not_ok "id-ctrl"
	sed 's/^/#   /' "$T/err"
fi

export LIBNVME_MI_PROBE_ENABLED=0

nsze_of() {
	pre nvme id-ns $DEV -n "$1" -o json >"$T/idns" 2>"$T/err" || return 1
	json_field "$T/idns" nsze
}
[ "$(nsze_of 1)" = 1024 ] && ok "id-ns 1: 1024 blocks" || not_ok "id-ns 1: $(cat "$T/err")"
[ "$(nsze_of 2)" = 0 ] && ok "id-ns 2: not attached, zeroes" || not_ok "id-ns 2"

if pre nvme smart-log $DEV -o json >"$T/smart" 2>"$T/err"; then
	cw=$(json_field "$T/smart" critical_warning)
	temp=$(json_field "$T/smart" temperature)
	spare=$(json_field "$T/smart" avail_spare)
	if [ "$cw" = 0 ] && [ "$spare" = 100 ] && [ "$temp" -gt 200 ] 2>/dev/null; then
		ok "smart-log: no warning, spare 100%, temperature ${temp} K"
	else
		not_ok "smart-log: cw '$cw' spare '$spare' temp '$temp'"
	fi
else
	not_ok "smart-log"
fi

if pre nvme fw-log $DEV -o json >"$T/fw" 2>"$T/err" &&
	grep -q '"Active Firmware Slot (afi)" *: *1' "$T/fw"; then
	ok "fw-log: slot 1 active"
else
	not_ok "fw-log"
	sed 's/^/#   /' "$T/fw" "$T/err"
fi

# The SMART log again, raw through get-log: byte 3 is the available spare (0x64).
if pre nvme get-log $DEV --log-id=2 --log-len=512 >"$T/gl" 2>"$T/err" &&
	grep -q '^0000: 00 .. .. 64 ' "$T/gl"; then
	ok "get-log 2 (512 bytes)"
else
	not_ok "get-log 2"
	head -n 3 "$T/gl" "$T/err" | sed 's/^/#   /'
fi

check "get-feature: Number of Queues" sh -c \
	"LD_PRELOAD='$PRELOAD' NVEMU_MCTP_SOCKET='$SOCK' nvme get-feature $DEV -n 1 -f 7 | grep -q 'Number of Queues'"

# Identify Controller by hand: the serial number sits at byte 4.
if pre nvme admin-passthru $DEV --opcode=6 --cdw10=1 --data-len=4096 -r -b >"$T/pt.bin" 2>"$T/err" &&
	[ "$(dd if="$T/pt.bin" bs=1 skip=4 count=${#SN} 2>/dev/null)" = "$SN" ]; then
	ok "admin-passthru Identify Controller"
else
	not_ok "admin-passthru"
	sed 's/^/#   /' "$T/err"
fi

# Namespace management and attachment through the Admin tunnel.
if pre nvme create-ns $DEV --nsze=4096 --ncap=4096 --flbas=0 >"$T/cr" 2>&1 &&
	grep -q "created nsid:3" "$T/cr"; then
	ok "create-ns: nsid 3"
else
	not_ok "create-ns: $(cat "$T/cr")"
fi
[ "$(nsze_of 3)" = 0 ] && ok "id-ns 3 before attach: zeroes" || not_ok "id-ns 3 before attach"
check "attach-ns 3 to controller 1" pre nvme attach-ns $DEV -n 3 -c 1
[ "$(nsze_of 3)" = 4096 ] && ok "id-ns 3 after attach: 4096 blocks" || not_ok "id-ns 3 after attach"
if pre nvme list-ns $DEV >"$T/ls" 2>&1 && grep -q '0x1$' "$T/ls" && grep -q '0x3$' "$T/ls"; then
	ok "list-ns: 1 and 3 active"
else
	not_ok "list-ns: $(cat "$T/ls")"
fi
check "detach-ns 3" pre nvme detach-ns $DEV -n 3 -c 1
check "delete-ns 3" pre nvme delete-ns $DEV -n 3
[ "$(nsze_of 3)" = 0 ] && ok "id-ns 3 after delete: zeroes" || not_ok "id-ns 3 after delete"

# An EID nobody owns: libnvme-mi gives up after its 5 s timeout.
if pre nvme id-ns mctp:1,10 -n 1 >"$T/to" 2>&1; then
	not_ok "EID 10 answered"
else
	grep -qi "timed out" "$T/to" && ok "EID nobody owns: timed out" || not_ok "EID 10: $(cat "$T/to")"
fi
