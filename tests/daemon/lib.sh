# SPDX-License-Identifier: MIT
# Shared by the daemon tests: TAP output, a private nvemud, nvemu-rpc wrappers.
# Needs NVEMUD, NVEMU_RPC, RPC_RAW and JSON_GET (set by tests/daemon/meson.build).
# No jq or python: JSON is looked into with the json-get helper.

set -u

for v in NVEMUD NVEMU_RPC RPC_RAW JSON_GET; do
	eval "p=\${$v:-}"
	if [ -z "$p" ] || [ ! -x "$p" ]; then
		# Set by meson; a missing tool is a failure, never a skip.
		echo "1..1"
		echo "not ok 1 - $v not set or not executable"
		exit 1
	fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/nvemu-test.XXXXXX")
SOCK=$T/sock
DPID=
_n=0
_failed=0

_finish() {
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -TERM "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	# A sanitizer build reports into the daemon log: any report fails the test.
	if cat "$T"/*.log 2>/dev/null |
	   grep -q -E "ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|SUMMARY: .*Sanitizer"; then
		_n=$((_n + 1))
		_failed=$((_failed + 1))
		echo "not ok $_n - a sanitizer reported an error in the daemon log"
		cat "$T"/*.log | grep -A 30 -E "Sanitizer|runtime error:" | head -n 60 | sed 's/^/#   /'
	fi
	if [ "$_failed" -ne 0 ] && [ -f "$T/daemon.log" ]; then
		echo "# daemon log (last lines):"
		tail -n 20 "$T/daemon.log" | sed 's/^/#   /'
	fi
	rm -rf "$T"
	echo "1..$_n"
}
trap _finish EXIT

ok() {
	_n=$((_n + 1))
	echo "ok $_n - $*"
}

nok() {
	_n=$((_n + 1))
	_failed=$((_failed + 1))
	echo "not ok $_n - $*"
}

diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

# check DESC COMMAND...: ok if COMMAND succeeds.
check() {
	_d=$1
	shift
	if "$@"; then ok "$_d"; else nok "$_d"; fi
}

rpc() {
	"$NVEMU_RPC" -s "$SOCK" -t 10 "$@"
}

# call METHOD ARGS...: sets OUT (stdout), ERR (stderr), RC.
call() {
	OUT=$(rpc "$@" 2>"$T/err")
	RC=$?
	ERR=$(cat "$T/err")
}

# expect_ok DESC METHOD ARGS...
expect_ok() {
	_d=$1
	shift
	call "$@"
	if [ "$RC" -eq 0 ]; then
		ok "$_d"
	else
		nok "$_d"
		diag "$* -> rc $RC: $ERR"
	fi
}

# expect_err DESC CODE PATTERN METHOD ARGS...: exit 1 with "error CODE: ..." matching PATTERN.
expect_err() {
	_d=$1
	_code=$2
	_pat=$3
	shift 3
	call "$@"
	if [ "$RC" -eq 1 ] && printf '%s' "$ERR" | grep -q -- "^error $_code" &&
	   printf '%s' "$ERR" | grep -q -i -- "$_pat"; then
		ok "$_d"
	else
		nok "$_d"
		diag "$* -> rc $RC, stdout: $OUT" "stderr: $ERR" "wanted: error $_code matching '$_pat'"
	fi
}

# jget ARGS...: json-get on OUT.
jget() {
	printf '%s' "$OUT" | "$JSON_GET" "$@"
}

# expect_eq DESC GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		nok "$1"
		diag "got:  $2" "want: $3"
	fi
}

# Poll until the daemon answers; 0 when up, 1 if it died or took over 10 s.
wait_up() {
	_i=0
	while [ $_i -lt 200 ]; do
		if [ -n "$DPID" ] && ! kill -0 "$DPID" 2>/dev/null; then
			return 1
		fi
		if [ -S "$SOCK" ] && "$NVEMU_RPC" -s "$SOCK" -t 2 rpc_get_methods >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
		_i=$((_i + 1))
	done
	return 1
}

# start_daemon ARGS...: a private nvemud on $SOCK; its default TCP listener
# takes a free port (set LISTEN to override) and its AF_MCTP router a private
# socket (MCTP_SOCK, default $T/mctp.sock), so parallel tests never clash.
start_daemon() {
	"$NVEMUD" -r "$SOCK" -l "${LISTEN:-127.0.0.1:0}" -m "${MCTP_SOCK:-$T/mctp.sock}" "$@" \
		>>"$T/daemon.log" 2>&1 &
	DPID=$!
	wait_up
}

# stop_daemon [SIGNAL]: sets DRC to the daemon's exit status.
stop_daemon() {
	DRC=
	kill "-${1:-TERM}" "$DPID" 2>/dev/null
	_i=0
	while kill -0 "$DPID" 2>/dev/null && [ $_i -lt 200 ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
	if kill -0 "$DPID" 2>/dev/null; then
		kill -KILL "$DPID" 2>/dev/null
		DRC=timeout
	fi
	wait "$DPID" 2>/dev/null
	DRC=${DRC:-$?}
	DPID=
}

daemon_alive() {
	[ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null
}

# state: every list, canonical, one per line (to compare before/after).
state() {
	for m in bdev_list nvme_subsystem_list nvme_namespace_list nvme_controller_list; do
		printf '%s: ' "$m"
		rpc "$m" 2>&1 | "$JSON_GET" -c 2>&1
	done
}

# jhas KEY=VALUE: OUT is an array with an element whose KEY prints as VALUE.
jhas() {
	jget -f "$1" . >/dev/null
}

not() {
	! "$@"
}

quiet() {
	"$@" >/dev/null 2>&1
}

# either A = B C = D: true if A equals B or C equals D.
either() {
	[ "$1" = "$3" ] || [ "$4" = "$6" ]
}
