#!/bin/sh
# SPDX-License-Identifier: MIT
# Shared by the guest scripts (sourced; run-guest.sh puts it next to the
# script): TAP checks, nvemud start/stop, and finding the kernel's NVMe/TCP
# controller and namespaces for the default subsystem.
set -u
NQN=nqn.2014-08.io.nvemu:default
HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:6e7a1c2b-8d3e-4f50-9a61-7b8c9d0e1f23
HOSTID=6e7a1c2b-8d3e-4f50-9a61-7b8c9d0e1f23
ADDR="-t tcp -a 127.0.0.1 -s 4420"
LOG=/tmp/nvemud.log
OUT=/tmp/out
n=0
failed=0

diag() { sed 's/^/# /' "$@"; }
T0=$(date +%s)
el() { echo "[$(($(date +%s) - T0))s]"; }
ok() { n=$((n + 1)); echo "ok $n - $1 $(el)"; }
nok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1 $(el)"
	[ -s $OUT ] && tail -n 15 $OUT | diag
}
# t DESC CMD...: one check, the command's output in $OUT.
t() {
	_d=$1
	shift
	if "$@" >$OUT 2>&1; then ok "$_d"; else nok "$_d"; fi
}
# tg DESC PATTERN FILE: FILE has a line matching PATTERN (FILE shown if not).
tg() {
	if grep -q "$2" "$3"; then ok "$1"; else nok "$1"; tail -n 30 "$3" | diag; fi
}
# finish: the plan line, the daemon's and kernel's last words on failure, the exit status.
finish() {
	if [ $failed -ne 0 ]; then
		echo "# nvemud log:"
		tail -n 40 $LOG | diag
		echo "# kernel:"
		dmesg | grep -i nvme | tail -n 20 | diag
	fi
	echo "1..$n"
	[ $failed -eq 0 ]
	exit $?
}
bail() {
	nok "$*"
	finish
}
rpc() { nvemu-rpc -t 20 "$@"; }

# wait_pid PID SECONDS: 0 once PID has exited (status in WAIT_RC), 1 if still running.
wait_pid() {
	for _i in $(seq $(($2 * 10))); do
		if ! kill -0 "$1" 2>/dev/null; then
			wait "$1"
			WAIT_RC=$?
			return 0
		fi
		sleep 0.1
	done
	return 1
}
# reactor_busy ID: nvemud's reactor thread nvemud-rID has used CPU (it served queues).
reactor_busy() {
	for _t in /proc/$NVEMUD_PID/task/*; do
		[ "$(cat $_t/comm 2>/dev/null)" = "nvemud-r$1" ] || continue
		# utime + stime: fields 14 and 15 (the name, field 2, has no spaces)
		[ "$(awk '{ print $14 + $15 }' $_t/stat)" -gt 0 ]
		return
	done
	echo "no thread nvemud-r$1"
	return 1
}
alive() { kill -0 $NVEMUD_PID 2>/dev/null && rpc rpc_get_methods >/dev/null 2>&1; }

# start_nvemud ARGS...: nvemud in the background, 0 once it answers RPC (up to 10 s).
# nvemu.reactors=N on the kernel command line (NVEMU_GUEST_REACTORS for
# run-guest.sh) runs every nvemud of the script with --reactors N.
NVEMUD_REACTORS=$(sed -n 's/.*nvemu\.reactors=\([0-9]*\).*/\1/p' /proc/cmdline 2>/dev/null)
start_nvemud() {
	nvemud ${NVEMUD_REACTORS:+--reactors $NVEMUD_REACTORS} "$@" >>$LOG 2>&1 &
	NVEMUD_PID=$!
	for _i in $(seq 100); do
		alive && return 0
		kill -0 $NVEMUD_PID 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
# stop_nvemud: SIGTERM, wait up to 15 s; sets STOP_RC (exit status or "timeout").
stop_nvemud() {
	STOP_RC=
	kill -TERM $NVEMUD_PID
	if wait_pid $NVEMUD_PID 15; then
		STOP_RC=$WAIT_RC
	else
		kill -KILL $NVEMUD_PID
		wait $NVEMUD_PID
		STOP_RC=timeout
	fi
}

# The block device of NSID $1 (multipath head or plain), empty if none.
ns_dev() {
	for _b in /sys/block/nvme*; do
		case ${_b##*/} in nvme*c*) continue ;; esac
		[ "$(cat "$_b/nsid" 2>/dev/null)" = "$1" ] && [ -b "/dev/${_b##*/}" ] &&
			echo "/dev/${_b##*/}" && return 0
	done
	return 1
}
# wait_ns NSID [gone]: up to 15 s for the namespace to appear (or to disappear).
wait_ns() {
	for _i in $(seq 150); do
		if [ "${2:-}" = gone ]; then ns_dev "$1" >/dev/null || return 0
		else ns_dev "$1" >/dev/null && return 0
		fi
		sleep 0.1
	done
	return 1
}
# The character device of the host's live controller of $NQN, empty if none.
ctrl_dev() {
	for _c in /sys/class/nvme/nvme*; do
		[ -e "$_c/subsysnqn" ] && grep -qx "$NQN" "$_c/subsysnqn" &&
			[ "$(cat "$_c/state")" = live ] && echo "/dev/${_c##*/}" && return 0
	done
	return 1
}
ctrl_live() { ctrl_dev >/dev/null; }
# A sanitized nvemud (run-guest.sh with build-asan) reports into its log.
check_sanitizer() {
	if grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" $LOG; then
		nok "no sanitizer report in the nvemud log"
		grep -A 12 "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" $LOG |
			head -n 40 | diag
	else
		ok "no sanitizer report in the nvemud log"
	fi
}
