# SPDX-License-Identifier: MIT
# Shared by the Ceph tests (after tests/daemon/lib.sh): a private cluster
# under $T/ceph from tests/ceph/cluster.sh, stopped when the test ends.
# Needs NVEMU_PERF too. A missing Ceph package is a failure, never a skip.

CLUSTER=$(cd "$(dirname "$0")" && pwd)/cluster.sh
C=$T/ceph
LISTEN=none
MCTP_SOCK=none
_bg_pids=

if [ -z "${NVEMU_PERF:-}" ] || [ ! -x "$NVEMU_PERF" ]; then
	nok "NVEMU_PERF not set or not executable"
	exit 1
fi

_ceph_finish() {
	for p in $_bg_pids $DPID; do
		kill -TERM "$p" 2>/dev/null
	done
	# Daemons first: closing an image talks to the cluster, which must still be there.
	for p in $_bg_pids $DPID; do
		wait "$p" 2>/dev/null
	done
	DPID=
	"$CLUSTER" stop "$C" >/dev/null 2>&1
	if [ "$_failed" -ne 0 ] && [ -d "$C/log" ]; then
		echo "# ceph logs (last lines):"
		tail -n 5 "$C"/log/*.log 2>/dev/null | sed 's/^/#   /'
	fi
	_finish
}
trap _ceph_finish EXIT

# cx TOOL ARGS...: a Ceph tool as client.admin of the test's cluster.
cx() {
	_t=$1
	shift
	timeout 60 "$_t" -c "$C/ceph.conf" "$@" >>"$T/ceph-cli.log" 2>&1
}

# ceph_start: the cluster and the pool "rbd"; says how long it took.
ceph_start() {
	mkdir -p "$C"
	_s=$(date +%s.%N)
	if ! "$CLUSTER" start "$C" >"$T/cluster.log" 2>&1; then
		nok "Ceph cluster starts (tests/ceph/cluster.sh)"
		sed 's/^/# /' "$T/cluster.log"
		return 1
	fi
	_e=$(date +%s.%N)
	ok "Ceph cluster (1 mon, 1 BlueStore OSD) up in $(awk "BEGIN { printf \"%.1f\", $_e - $_s }") s"
	check "pool rbd" cx ceph osd pool create rbd 8
	check "rbd pool init rbd" cx rbd pool init rbd
}

# ceph_image NAME SIZE
ceph_image() {
	cx rbd create --size "$2" "rbd/$1"
}

# ceph_user ID: client.ID with the rbd profile; its key in $C/ID.key.
ceph_user() {
	timeout 60 ceph -c "$C/ceph.conf" auth get-or-create "client.$1" mon 'profile rbd' \
		osd 'profile rbd pool=rbd' >"$T/$1.keyring" 2>>"$T/ceph-cli.log" &&
		timeout 60 ceph -c "$C/ceph.conf" auth print-key "client.$1" >"$C/$1.key" 2>>"$T/ceph-cli.log" &&
		[ -s "$C/$1.key" ]
}

# perf ARGS...: nvemu-perf with its report as TAP comments.
perf() {
	"$NVEMU_PERF" --quiet "$@" >"$T/perf.out" 2>&1
	_rc=$?
	sed 's/^/# /' "$T/perf.out"
	return $_rc
}

# wait_for SECONDS COMMAND...
wait_for() {
	_w=$(($1 * 10))
	shift
	while [ $_w -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		_w=$((_w - 1))
	done
	return 1
}
