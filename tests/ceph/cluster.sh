#!/bin/sh
# SPDX-License-Identifier: MIT
# A single-node Ceph cluster from Debian's packages, all under one directory,
# on 127.0.0.1: one monitor, one OSD (BlueStore on a sparse file, so it
# keeps its data across an OSD restart), a manager only with CEPH_MGR=1
# (librbd and the rbd/rados tools do not need one, and it costs a core).
# cephx keys are generated here; nothing outside DIR is touched.
#
#   cluster.sh start DIR     -> DIR/ceph.conf, DIR/keyring (client.admin)
#   cluster.sh stop DIR
#   cluster.sh osd-stop DIR / osd-start DIR   (the OSD alone, for outage tests)
#   cluster.sh mon-stop DIR / mon-start DIR
# Ports: CEPH_MON_PORT (default: a free port above 20000).
set -eu

cmd=${1:?usage: cluster.sh start|stop|osd-stop|osd-start|mon-stop|mon-start DIR}
D=${2:?usage: cluster.sh $cmd DIR}
CONF=$D/ceph.conf

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

for t in ceph-mon ceph-osd ceph ceph-authtool monmaptool; do
	command -v $t >/dev/null 2>&1 || die "$t not found (tools/install-deps.sh installs ceph-mon ceph-osd ceph-common)"
done

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

c() { timeout 60 ceph -c "$CONF" "$@"; }

# wait_pidfile FILE: the daemon wrote its pid file and it lives.
wait_pid() {
	_i=0
	while [ $_i -lt 300 ]; do
		[ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

stop_pid() {
	[ -s "$1" ] || return 0
	_p=$(cat "$1")
	kill -TERM "$_p" 2>/dev/null || { rm -f "$1"; return 0; }
	_i=0
	while kill -0 "$_p" 2>/dev/null && [ $_i -lt 100 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	kill -KILL "$_p" 2>/dev/null || true
	rm -f "$1"
}

mon_start() {
	ceph-mon -c "$CONF" -i a
	wait_pid "$D/run/mon.a.pid" || die "ceph-mon did not start (see $D/log)"
}

osd_start() {
	ceph-osd -c "$CONF" -i 0
	wait_pid "$D/run/osd.0.pid" || die "ceph-osd did not start (see $D/log)"
}

# wait_osd_up: the OSD is up and in (60 s).
wait_osd_up() {
	_i=0
	while [ $_i -lt 120 ]; do
		c osd dump 2>/dev/null | grep -q '^osd.0 up *in' && return 0
		sleep 0.5
		_i=$((_i + 1))
	done
	return 1
}

start() {
	[ ! -e "$CONF" ] || die "$D already holds a cluster"
	mkdir -p "$D/run" "$D/log" "$D/mon/ceph-a" "$D/osd/ceph-0"
	port=${CEPH_MON_PORT:-$(free_port)}
	fsid=$(cat /proc/sys/kernel/random/uuid)
	cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$port
public addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr2 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/keyring
run dir = $D/run
pid file = $D/run/\$name.pid
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
log to stderr = false
err to stderr = true
mon data = $D/mon/\$cluster-\$id
osd data = $D/osd/\$cluster-\$id
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 4294967296
bluestore fsck on mount = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd memory target = 939524096
bluestore cache autotune = false
bluestore cache size = 134217728
osd op num shards = 1
osd op num threads per shard = 2
osd max object name len = 256
osd max object namespace len = 64
# The OSD comes back fast after a restart; the mon marks a dead OSD down soon.
osd heartbeat grace = 6
osd heartbeat interval = 2
# A killed gateway's watch (and so its RBD lock) goes after 10 s, not 30.
osd client watch timeout = 10
mon osd down out interval = 0
mon osd min down reporters = 1
# A test's librbd client gives up on the cluster in bounded time.
client mount timeout = 15
[osd]
keyring = $D/osd/\$cluster-\$id/keyring
[mon]
keyring = $D/mon.keyring
EOF
	ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	ceph-authtool --create-keyring "$D/keyring" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
	ceph-authtool "$D/mon.keyring" --import-keyring "$D/keyring" >/dev/null
	monmaptool --create --addv a "[v1:127.0.0.1:$port]" --fsid "$fsid" "$D/monmap" >/dev/null
	ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" --keyring "$D/mon.keyring" \
		>"$D/log/mon-mkfs.log" 2>&1 || die "ceph-mon --mkfs failed: $(tail -n 5 "$D/log/mon-mkfs.log")"
	mon_start
	uuid=$(cat /proc/sys/kernel/random/uuid)
	id=$(c osd new "$uuid") || die "ceph osd new failed"
	[ "$id" = 0 ] || die "expected osd.0, got $id"
	ceph-osd -c "$CONF" -i 0 --no-mon-config --mkfs --mkkey --osd-uuid "$uuid" >"$D/log/osd-mkfs.log" 2>&1 ||
		die "ceph-osd --mkfs failed: $(tail -n 5 "$D/log/osd-mkfs.log")"
	c auth add osd.0 osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
		-i "$D/osd/ceph-0/keyring" >/dev/null 2>&1 || die "ceph auth add osd.0 failed"
	osd_start
	if [ "${CEPH_MGR:-0}" = 1 ]; then
		mkdir -p "$D/mgr/ceph-x"
		c auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
			>"$D/mgr/ceph-x/keyring"
		ceph-mgr -c "$CONF" -i x --mgr-data "$D/mgr/ceph-x"
	fi
	wait_osd_up || die "osd.0 did not come up (see $D/log/osd.0.log)"
}

stop() {
	[ -d "$D/run" ] || return 0
	stop_pid "$D/run/mgr.x.pid"
	stop_pid "$D/run/osd.0.pid"
	stop_pid "$D/run/mon.a.pid"
}

case $cmd in
start) start ;;
stop) stop ;;
osd-stop) stop_pid "$D/run/osd.0.pid" ;;
osd-start) osd_start; wait_osd_up || die "osd.0 did not come back up" ;;
mon-stop) stop_pid "$D/run/mon.a.pid" ;;
mon-start) mon_start ;;
*) die "unknown command $cmd" ;;
esac
