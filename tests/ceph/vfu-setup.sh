#!/bin/sh
# SPDX-License-Identifier: MIT
# NVEMU_VFU_SETUP for tests/ceph/rbd-vfu.sh: an RBD namespace (NSID 17) on
# the controller run-vfu-guest.sh serves. Args: NVEMU_RPC RPC_SOCKET;
# RBD_VFU_CONF names the cluster's ceph.conf.
set -eu
rpc=$1
sock=$2
"$rpc" -s "$sock" -t 60 bdev_rbd_create -b RbdVfu --pool_name rbd --rbd_name vfu \
	--config_file "$RBD_VFU_CONF" >/dev/null
"$rpc" -s "$sock" nvme_namespace_create --nqn nqn.2014-08.io.nvemu:default -b RbdVfu -n 17 >/dev/null
"$rpc" -s "$sock" nvme_controller_attach_ns -c NVMeCtrl1 -n 17 >/dev/null
