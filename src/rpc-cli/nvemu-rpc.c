// SPDX-License-Identifier: MIT
/*
 * nvemu-rpc: command-line client for nvemud's JSON-RPC 2.0 control plane.
 *
 *   nvemu-rpc [-s SOCKET] [-t TIMEOUT] [-v] METHOD [--param value ...] [-j JSON]
 *
 * Parameters are typed by a static table so that "--nsid 0x10" goes out as a
 * JSON number and "--suspended" as true; methods the table does not know are
 * still sent (values typed by their look) so new daemon methods work at once.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <jansson.h>

#include "config.h"
#include "status.h"

#define DEFAULT_SOCKET	"/var/tmp/nvemu.sock"
#define DEFAULT_TIMEOUT	60.0
/* The daemon refuses requests over 1 MiB; replies (save_config) may be larger. */
#define MAX_REPLY	(64u << 20)

enum ptype { P_STRING, P_INT, P_BOOL, P_UUID, P_JSON };

static const char *const ptype_name[] = {
	[P_STRING] = "string", [P_INT] = "int", [P_BOOL] = "bool", [P_UUID] = "uuid", [P_JSON] = "json",
};

struct param {
	const char *name;
	enum ptype type;
	char alias;		/* SNAP/SPDK short option, 0 if none */
	bool required;
	const char *help;
};

#define MAX_PARAMS 40 /* the list ends at the first unnamed entry: keep one spare */

struct method {
	const char *name;
	const char *help;
	struct param params[MAX_PARAMS];
};

#define NQN_REQ		{ "nqn", P_STRING, 0, true, "subsystem NQN" }
#define NQN_OPT		{ "nqn", P_STRING, 0, false, "only this subsystem (NQN)" }
#define CTRL_REQ	{ "ctrl", P_STRING, 'c', true, "controller name, e.g. NVMeCtrl1" }
#define NSID_REQ	{ "nsid", P_INT, 'n', true, "namespace ID" }
#define BDEV_NAME	{ "name", P_STRING, 'b', true, "bdev name" }
#define LISTEN_ADDR \
	{ "trtype", P_STRING, 't', false, "transport type: tcp (the default)" }, \
	{ "traddr", P_STRING, 'a', false, "numeric IP address (required unless listen_address)" }, \
	{ "trsvcid", P_STRING, 0, false, "TCP port (required unless listen_address)" }, \
	{ "adrfam", P_STRING, 'f', false, "ipv4 or ipv6 (default: from traddr)" }

/* The PCIe function a controller is on (emulation_function_list). */
#define FUNC_SEL \
	{ "vuid", P_STRING, 0, false, "VUID of the PCIe function" }, \
	{ "pf_id", P_INT, 0, false, "PCIe PF index" }, \
	{ "vf_id", P_INT, 0, false, "PCIe VF index (with pf_id)" }, \
	{ "pci_bdf", P_STRING, 0, false, "PCIe BDF of the function" }, \
	{ "vhca_id", P_INT, 0, false, "vHCA ID of the function" }

#define VBLK_CTRL_REQ	{ "ctrl", P_STRING, 'c', true, "virtio-blk controller name, e.g. VblkCtrl1" }
#define VBLK_TARGET \
	{ "device", P_STRING, 'd', false, "SN:n<NSID>, NQN:n<NSID> or a GPT partition UUID" }, \
	{ "bdev", P_STRING, 'b', false, "the bdev of the namespace to serve" }, \
	{ "nqn", P_STRING, 0, false, "subsystem NQN (with nsid)" }, \
	{ "nsid", P_INT, 'n', false, "namespace ID (with nqn)" }

static const struct method methods[] = {
	{ "nvme_subsystem_create", "Create an NVMe subsystem", {
		NQN_REQ,
		{ "serial_number", P_STRING, 0, false, "serial number, at most 20 characters" },
		{ "model_number", P_STRING, 0, false, "model number, at most 40 characters" },
		{ "firmware_rev", P_STRING, 0, false, "firmware revision, at most 8 characters" },
		{ "nn", P_INT, 0, false, "largest NSID allowed (1-0xFFFFFFFE, default 0xFFFFFFFE)" },
		{ "mnan", P_INT, 0, false, "maximum number of namespaces (default 1024)" },
		{ "single_ctrl", P_BOOL, 0, false, "restrict the subsystem to one controller" },
		{ "min_cntlid", P_INT, 0, false, "lowest controller ID given out (default 1)" },
		{ "max_cntlid", P_INT, 0, false,
		  "highest controller ID given out (default 0xffef); gateways of one subsystem use disjoint ranges" },
		{ "ana_reporting", P_BOOL, 'r', false,
		  "report Asymmetric Namespace Access (multipath: ANA log, per-listener states)" },
		{ "state_file", P_STRING, 0, false,
		  "file keeping the sanitize state through restarts, as through a power cycle" },
	} },
	{ "nvme_subsystem_destroy", "Destroy an NVMe subsystem", {
		NQN_REQ,
		{ "force", P_BOOL, 0, false, "also destroy its controllers and namespaces" },
	} },
	{ "nvme_subsystem_list", "List NVMe subsystems", { NQN_OPT } },
	{ "nvme_subsystem_add_port", "Add a port (pcie, two_wire or tcp) to a subsystem", {
		NQN_REQ,
		{ "type", P_STRING, 't', true, "pcie, two_wire or tcp" },
		{ "port_number", P_INT, 0, false, "pcie: port number (0-255)" },
		{ "max_link_speed", P_INT, 0, false, "pcie: maximum link speed (1-6)" },
		{ "max_link_width", P_INT, 0, false, "pcie: maximum link width (1-32)" },
		{ "address", P_INT, 0, false, "two_wire: 7-bit address" },
		{ "max_freq", P_INT, 0, false, "two_wire: maximum frequency (1-3)" },
		{ "mctp_send_enabled", P_BOOL, 0, false, "two_wire: MCTP send enabled" },
		{ "traddr", P_STRING, 'a', false, "tcp: address" },
		{ "trsvcid", P_STRING, 0, false, "tcp: service (port)" },
		{ "adrfam", P_STRING, 'f', false, "tcp: address family (ipv4, ipv6)" },
	} },
	{ "nvme_subsystem_remove_port", "Remove a port no controller uses", {
		NQN_REQ,
		{ "port", P_INT, 0, true, "port ID" },
	} },
	{ "nvme_subsystem_set_health", "Set the health values reported in SMART logs", {
		NQN_REQ,
		{ "temperature", P_INT, 0, false, "composite temperature (Kelvin)" },
		{ "available_spare", P_INT, 0, false, "available spare (percent, 0-100)" },
		{ "percentage_used", P_INT, 0, false, "percentage used (0-255)" },
		{ "available_spare_threshold", P_INT, 0, false, "available spare threshold (percent)" },
		{ "critical_warning", P_INT, 0, false, "critical warning bits (0-0xff)" },
	} },
	{ "nvme_subsystem_get_health", "Show the health values", { NQN_REQ } },
	{ "bdev_null_create", "Create a null bdev (reads zeroes, drops writes)", {
		BDEV_NAME,
		{ "num_blocks", P_INT, 0, true, "size in blocks" },
		{ "block_size", P_INT, 0, false, "block size in bytes (default 512)" },
	} },
	{ "bdev_malloc_create", "Create a RAM bdev (sparse)", {
		BDEV_NAME,
		{ "num_blocks", P_INT, 0, true, "size in blocks" },
		{ "block_size", P_INT, 0, false, "block size in bytes (default 512)" },
	} },
	{ "bdev_file_create", "Create a bdev backed by a file or block device", {
		BDEV_NAME,
		{ "filename", P_STRING, 'f', true, "path of the file or block device" },
		{ "block_size", P_INT, 0, false, "block size in bytes (default 512)" },
		{ "num_blocks", P_INT, 0, false, "size in blocks (default: the file's size)" },
		{ "read_only", P_BOOL, 0, false, "open read-only" },
		{ "direct", P_BOOL, 0, false, "open with O_DIRECT" },
	} },
	{ "bdev_delete", "Delete a bdev not used by a namespace", { BDEV_NAME } },
	{ "bdev_delay_create", "Create a bdev that adds a latency to each I/O of a base bdev", {
		BDEV_NAME,
		{ "base_bdev_name", P_STRING, 0, true, "the bdev whose I/O is delayed" },
		{ "latency_us", P_INT, 'l', false, "latency of every I/O in microseconds (max 10 s)" },
		{ "read_latency_us", P_INT, 'r', false, "read latency in microseconds" },
		{ "write_latency_us", P_INT, 'w', false, "write/flush latency in microseconds" },
		{ "avg_read_latency", P_INT, 0, false, "SPDK's name for read_latency_us" },
		{ "avg_write_latency", P_INT, 0, false, "SPDK's name for write_latency_us" },
		{ "p99_read_latency", P_INT, 0, false, "latency of 1 read in 100 (microseconds)" },
		{ "p99_write_latency", P_INT, 0, false, "latency of 1 write in 100 (microseconds)" },
	} },
	{ "bdev_delay_delete", "Delete a delay bdev (its base stays)", { BDEV_NAME } },
	{ "bdev_delay_update_latency", "Change a delay bdev's latencies for new I/O", {
		{ "name", P_STRING, 'b', false, "delay bdev name" },
		{ "delay_bdev_name", P_STRING, 'd', false, "SPDK's name for name" },
		{ "latency_type", P_STRING, 't', false, "SPDK: avg_read, avg_write, p99_read or p99_write (sets latency_us)" },
		{ "latency_us", P_INT, 'l', false, "latency of every I/O in microseconds (max 10 s)" },
		{ "read_latency_us", P_INT, 'r', false, "read latency in microseconds" },
		{ "write_latency_us", P_INT, 'w', false, "write/flush latency in microseconds" },
		{ "p99_read_latency", P_INT, 0, false, "latency of 1 read in 100 (microseconds)" },
		{ "p99_write_latency", P_INT, 0, false, "latency of 1 write in 100 (microseconds)" },
	} },
	{ "bdev_delay_list", "List delay bdevs with their I/O counters", {
		{ "name", P_STRING, 'b', false, "only this bdev" },
	} },
	{ "bdev_error_create", "Create an error-injection bdev EE_<base_name> over a bdev", {
		{ "base_name", P_STRING, 'b', true, "the bdev whose I/O passes through" },
		{ "name", P_STRING, 'n', false, "its name (default EE_<base_name>)" },
	} },
	{ "bdev_error_delete", "Delete an error bdev (its base stays)", { BDEV_NAME } },
	{ "bdev_error_inject_error", "Add a fault rule to an error bdev (or clear them)", {
		BDEV_NAME,
		{ "io_type", P_STRING, 't', true, "clear, read, write, unmap, flush, write_zeroes or all" },
		{ "error_type", P_STRING, 'e', false, "failure, pending (stop completing), corrupt_data or nomem" },
		{ "num", P_INT, 'n', false, "I/Os to act on (default 1; 0 removes the rules on io_type; 4294967295 no limit)" },
		{ "queue_depth", P_INT, 'q', false, "act only with this many I/Os in flight" },
		{ "corrupt_offset", P_INT, 'o', false, "corrupt_data: byte in the I/O to XOR" },
		{ "corrupt_value", P_INT, 0, false, "corrupt_data: XOR value (1-255)" },
		{ "offset_blocks", P_INT, 0, false, "first block of the LBA range the I/O must overlap" },
		{ "num_blocks", P_INT, 0, false, "blocks in the range (default: to the end)" },
		{ "probability", P_INT, 'p', false, "percent of matching I/Os to act on (default 100)" },
		{ "seed", P_INT, 0, false, "seed of the probability's generator (repeatable runs)" },
		{ "status", P_STRING, 0, false, "failure status: unrecovered_read_error, write_fault, guard_check_error, access_denied, internal_error, ..." },
		{ "sct", P_INT, 0, false, "failure status code type (with sc)" },
		{ "sc", P_INT, 0, false, "failure status code" },
		{ "dnr", P_BOOL, 0, false, "set Do Not Retry on sct/sc" },
	} },
	{ "bdev_error_list", "List error bdevs with their rules and held I/O", {
		{ "name", P_STRING, 'b', false, "only this bdev" },
	} },
	{ "bdev_rbd_create", "Create a bdev on a Ceph RBD image (librbd)", {
		BDEV_NAME,
		{ "pool_name", P_STRING, 0, true, "Ceph pool" },
		{ "rbd_name", P_STRING, 0, true, "RBD image in the pool" },
		{ "block_size", P_INT, 0, false, "block size in bytes (default 512)" },
		{ "user_id", P_STRING, 0, false, "cephx user without client. (default admin)" },
		{ "cluster_name", P_STRING, 0, false, "Ceph cluster name (default ceph)" },
		{ "config_file", P_STRING, 0, false, "a ceph.conf (default: Ceph's search)" },
		{ "key_file", P_STRING, 0, false, "a keyring file" },
		{ "config_param", P_JSON, 0, false,
		  "Ceph settings as JSON, e.g. '{\"mon_host\": \"127.0.0.1:6789\"}'" },
		{ "config", P_JSON, 0, false, "SPDK's name for config_param" },
		{ "exclusive", P_BOOL, 0, false,
		  "hold RBD's exclusive lock; writes only while held (multi-gateway)" },
	} },
	{ "bdev_rbd_delete", "Delete an RBD bdev (the image stays)", { BDEV_NAME } },
	{ "bdev_rbd_list", "List RBD bdevs: parameters, lock owner, I/O counters", {
		{ "name", P_STRING, 'b', false, "only this bdev" },
	} },
	{ "bdev_list", "List bdevs", {
		{ "name", P_STRING, 'b', false, "only this bdev" },
	} },
	{ "bdev_nvme_attach_controller", "Drive an NVMe controller; a bdev <name>n<NSID> per namespace", {
		{ "name", P_STRING, 'b', true, "controller name (bdevs are <name>n<NSID>)" },
		{ "trtype", P_STRING, 't', true, "tcp, pcie or vfio-user" },
		{ "traddr", P_STRING, 'a', true, "tcp: numeric IP; pcie: PCI address; vfio-user: socket" },
		{ "trsvcid", P_STRING, 's', false, "tcp: port (default 4420)" },
		{ "adrfam", P_STRING, 'f', false, "ipv4 or ipv6 (default: from traddr)" },
		{ "subnqn", P_STRING, 'n', false, "subsystem NQN (required for tcp)" },
		{ "hostnqn", P_STRING, 'q', false, "host NQN (default: from a random host ID)" },
		{ "hdgst", P_BOOL, 0, false, "tcp: header digest" },
		{ "ddgst", P_BOOL, 0, false, "tcp: data digest" },
		{ "nosgl", P_BOOL, 0, false, "pcie: PRP lists only" },
		{ "nomsi", P_BOOL, 0, false, "pcie: do not use MSI" },
		{ "nomsix", P_BOOL, 0, false, "pcie: do not use MSI-X" },
		{ "nointr", P_BOOL, 0, false, "pcie: no interrupts, poll completions every 1 ms" },
		{ "num_io_queues", P_INT, 0, false, "I/O queue pairs (default 2)" },
		{ "io_queue_size", P_INT, 0, false, "entries per I/O queue (default 128)" },
		{ "reconnect_delay_sec", P_INT, 0, false, "between reconnect attempts (default 1)" },
		{ "ctrlr_loss_timeout_sec", P_INT, 0, false, "give up after this long lost (default 60)" },
	} },
	{ "bdev_nvme_detach_controller", "Disconnect a controller and delete its bdevs", {
		{ "name", P_STRING, 'b', true, "controller name" },
	} },
	{ "bdev_nvme_get_controllers", "List driven controllers: state, namespaces, bdevs", {
		{ "name", P_STRING, 'b', false, "only this controller" },
	} },
	{ "nvme_namespace_create", "Create a namespace on a bdev", {
		NQN_REQ,
		{ "bdev_name", P_STRING, 'b', true, "backing bdev name" },
		NSID_REQ,
		{ "uuid", P_UUID, 'u', false, "namespace UUID (kept across detach/attach)" },
		{ "dbg_bdev_type", P_STRING, 0, false, "error: put the namespace on a new error bdev EE_<bdev_name>" },
		{ "nguid", P_STRING, 'g', false, "namespace GUID, 32 hex digits" },
		{ "eui64", P_STRING, 'e', false, "IEEE EUI-64, 16 hex digits" },
		{ "ptpl_file", P_STRING, 'p', false, "reservation state file (Persist Through Power Loss)" },
		{ "anagrpid", P_INT, 0, false, "ANA group ID, 1-32 (default: the NSID, or 1)" },
		{ "no_auto_visible", P_BOOL, 0, false,
		  "visible only to hosts added with nvmf_ns_add_host" },
	} },
	{ "nvme_namespace_destroy", "Destroy a namespace", { NQN_REQ, NSID_REQ } },
	{ "nvme_namespace_list", "List namespaces", { NQN_OPT } },
	{ "nvme_controller_create", "Create a controller in a subsystem", {
		NQN_REQ,
		{ "name", P_STRING, 0, false, "controller name (default NVMeCtrlN)" },
		{ "ctrl", P_INT, 0, false, "controller ID (CNTLID, 1-0xFFEF)" },
		{ "port", P_INT, 0, false, "port ID the controller is reached through" },
		{ "num_queues", P_INT, 0, false, "number of I/O queues (default 1, 1-31)" },
		{ "mdts", P_INT, 0, false, "MDTS (default 7, 1-7)" },
		{ "fw_slots", P_INT, 0, false, "firmware slots (default 4, 1-7)" },
		{ "max_queue_entries", P_INT, 0, false, "largest queue size (2-4096)" },
		{ "aerl", P_INT, 0, false, "async event request limit (0-15)" },
		{ "write_zeroes", P_BOOL, 0, false, "support Write Zeroes" },
		{ "compare", P_BOOL, 0, false, "support Compare" },
		{ "compare_write", P_BOOL, 0, false, "support fused Compare and Write" },
		{ "deallocate_dsm", P_BOOL, 0, false, "support Dataset Management deallocate" },
		{ "suspended", P_BOOL, 0, false, "create suspended (resume to start)" },
		{ "snapshot", P_STRING, 0, false, "create from this snapshot file" },
		{ "admin_only", P_BOOL, 0, false, "admin queue only, no I/O queues" },
		{ "quirks", P_INT, 0, false, "SNAP quirks bitmask: 0x1 NS Attribute Changed even if disabled, 0x2 also without a Changed NS List read, 0x8 OACS NS Management, 0x10 no SGLs (PCIe)" },
		{ "socket", P_STRING, 0, false,
		  "serve it as a PCIe function over vfio-user on this unix socket (absolute path)" },
		FUNC_SEL,
		{ "dynamic_msix", P_BOOL, 0, false, "PF: its VFs' MSI-X come from its pool" },
		{ "vf_num_msix", P_INT, 0, false, "VF: MSI-X (VI resources) from the PF's pool" },
		{ "queue_core_alloc_policy", P_STRING, 0, false, "on-demand or pre-allocation" },
		{ "admin_identify_cmd_fwd", P_STRING, 0, false,
		  "forward Identify with these CNS values, e.g. 0x0,0x1 (needs admin_cmd_fwd_socket)" },
		{ "admin_set_features_cmd_fwd", P_STRING, 0, false,
		  "forward Set Features with these FIDs, e.g. 0xc0,0xe4 (needs admin_cmd_fwd_socket)" },
		{ "admin_cmd_fwd_socket", P_STRING, 0, false,
		  "unix socket the forwarding application listens on (absolute path)" },
		{ "admin_cmd_fwd_timeout_ms", P_INT, 0, false,
		  "answer as nvemu when the application is silent this long (default 1000, max 10000)" },
	} },
	{ "nvme_controller_destroy", "Destroy a controller", {
		CTRL_REQ,
		{ "force", P_BOOL, 0, false, "destroy even while a host uses it" },
		{ "release_msix", P_BOOL, 0, false, "VF: give its MSI-X back to the PF's pool" },
	} },
	{ "nvme_controller_suspend", "Suspend a controller", {
		CTRL_REQ,
		{ "timeout_ms", P_INT, 0, false, "fail in-flight commands after this time" },
		{ "admin_only", P_BOOL, 0, false, "suspend the admin queue only" },
		{ "live_update_notifier", P_BOOL, 0, false,
		  "stop fetching from the guest and mark it for nvemud_live_update" },
	} },
	{ "nvme_controller_resume", "Resume a suspended controller", {
		CTRL_REQ,
		{ "live_update", P_BOOL, 0, false, "resume a controller taken over by this nvemud" },
	} },
	{ "nvme_controller_snapshot_get", "Write a suspended controller's state to a file", {
		CTRL_REQ,
		{ "filename", P_STRING, 'f', true, "snapshot file path" },
	} },
	{ "nvme_controller_list", "List controllers", {
		NQN_OPT,
		{ "ctrl", P_STRING, 'c', false, "only this controller" },
	} },
	{ "nvme_controller_modify", "Change a controller not used by a host", {
		{ "ctrl", P_STRING, 'c', false, "controller name (or name its function)" },
		{ "num_queues", P_INT, 0, false, "number of I/O queues" },
		{ "num_msix", P_INT, 0, false, "VF: MSI-X (VI resources) from the PF's pool" },
		FUNC_SEL,
		{ "admin_identify_cmd_fwd", P_STRING, 0, false,
		  "forward Identify with these CNS values (replaces the forwarding settings)" },
		{ "admin_set_features_cmd_fwd", P_STRING, 0, false,
		  "forward Set Features with these FIDs" },
		{ "admin_cmd_fwd_socket", P_STRING, 0, false,
		  "unix socket the forwarding application listens on" },
		{ "admin_cmd_fwd_timeout_ms", P_INT, 0, false, "forwarding timeout (default 1000)" },
		{ "quirks", P_INT, 0, false, "SNAP quirks bitmask: 0x1 NS Attribute Changed even if disabled, 0x2 also without a Changed NS List read, 0x8 OACS NS Management, 0x10 no SGLs (PCIe)" },
	} },
	{ "nvme_controller_vfs_msix_reclaim", "Give every VF's MSI-X back to the PF's pool", {
		CTRL_REQ } },
	{ "emulation_function_list", "List the emulated PCIe functions (PFs, VFs)", { { 0 } } },
	{ "emulation_functions_configure", "Set the number of PFs and VFs and their socket directory", {
		{ "num_pfs", P_INT, 0, false, "physical functions (0-16)" },
		{ "num_vfs", P_INT, 0, false, "virtual functions per PF (0-127)" },
		{ "socket_dir", P_STRING, 0, false, "directory of their vfio-user sockets" },
	} },
	{ "emulation_device_detach_prepare", "Prepare a function's hot-unplug", {
		{ "vuid", P_STRING, 0, true, "VUID of the function" } } },
	{ "emulation_device_detach", "Remove a function prepared for hot-unplug", {
		{ "vuid", P_STRING, 0, true, "VUID of the function" } } },
	{ "nvme_controller_attach_ns", "Attach a namespace to a controller", { CTRL_REQ, NSID_REQ } },
	{ "nvme_controller_detach_ns", "Detach a namespace from a controller", { CTRL_REQ, NSID_REQ } },
	{ "nvme_controller_debug_get", "Show registers and queue state", { CTRL_REQ } },
	{ "nvme_controller_iostat", "Show per-queue I/O counts", { CTRL_REQ } },
	{ "save_config", "Print the running configuration (for nvemud -c)", {
		{ "filename", P_STRING, 'f', false, "write it to this file instead" },
		{ "secrets", P_BOOL, 0, false, "include secrets (RBD cephx keys in config_param)" },
	} },
	{ "load_config", "Apply a configuration saved by save_config", {
		{ "filename", P_STRING, 'f', true, "configuration file" },
	} },
	{ "nvmf_subsystem_add_listener",
	  "Listen for NVMe/TCP hosts (or -j '{\"nqn\":...,\"listen_address\":{...}}' as SPDK)", {
		NQN_REQ, LISTEN_ADDR,
		{ "secure_channel", P_BOOL, 0, false,
		  "TLS 1.3 with the hosts' PSKs only (nvmf_subsystem_add_host --psk)" } } },
	{ "nvmf_subsystem_remove_listener", "Stop an NVMe/TCP listener", { NQN_REQ, LISTEN_ADDR } },
	{ "nvmf_subsystem_add_host", "Allow a host NQN, optionally with DH-HMAC-CHAP keys", {
		NQN_REQ,
		{ "host", P_STRING, 0, true, "host NQN" },
		{ "dhchap_key", P_STRING, 0, false,
		  "keyring key (DHHC-1 secret) the host must authenticate with" },
		{ "dhchap_ctrlr_key", P_STRING, 0, false,
		  "keyring key the controller authenticates with (bidirectional)" },
		{ "psk", P_STRING, 0, false,
		  "keyring key (NVMeTLSkey-1 PSK) for secure_channel listeners" },
	} },
	{ "nvmf_set_config", "DH-HMAC-CHAP hashes and DH groups the target may choose", {
		{ "dhchap_digests", P_STRING, 0, false, "comma-separated: sha256,sha384,sha512" },
		{ "dhchap_dhgroups", P_STRING, 0, false,
		  "comma-separated: null,ffdhe2048,ffdhe3072,ffdhe4096,ffdhe6144,ffdhe8192" },
	} },
	{ "keyring_file_add_key", "Add a key read from a file (mode 0600)", {
		{ "name", P_STRING, 'n', true, "key name" },
		{ "path", P_STRING, 'p', true, "absolute path of the key file" },
	} },
	{ "keyring_file_remove_key", "Remove a key no host uses", {
		{ "name", P_STRING, 'n', true, "key name" },
	} },
	{ "keyring_get_keys", "List the keys (never the secrets)", { { 0 } } },
	{ "nvmf_subsystem_remove_host", "Remove a host NQN from the allow list and disconnect it", {
		NQN_REQ,
		{ "host", P_STRING, 0, true, "host NQN" },
	} },
	{ "nvmf_subsystem_allow_any_host", "Allow any host, or only the listed ones", {
		NQN_REQ,
		{ "allow_any_host", P_BOOL, 0, true, "true: any host; false: the allow list" },
	} },
	{ "nvmf_subsystem_get_listeners", "List a subsystem's TCP listeners", { NQN_REQ } },
	{ "nvmf_subsystem_get_controllers", "List the controllers of connected hosts", { NQN_REQ } },
	{ "nvmf_get_subsystems", "Subsystems with listeners, hosts and connected controllers", {
		NQN_OPT } },
	{ "nvmf_subsystem_listener_set_ana_state",
	  "Set a listener's ANA state for one ANA group (all without anagrpid)", {
		NQN_REQ, LISTEN_ADDR,
		{ "ana_state", P_STRING, 'n', true,
		  "optimized, non_optimized, inaccessible, persistent_loss or change" },
		{ "anagrpid", P_INT, 'g', false, "ANA group ID, 1-32 (default: every group)" },
		{ "next_state", P_STRING, 0, false,
		  "with change: the state it moves on to (default: the state before)" },
		{ "change_ms", P_INT, 0, false,
		  "with change: how long it lasts, 0-9000 ms (default 1000; 0: until set again)" },
	} },
	{ "nvmf_ns_add_host", "Make a no_auto_visible namespace visible to a host NQN", {
		NQN_REQ, NSID_REQ,
		{ "host", P_STRING, 0, true, "host NQN" },
	} },
	{ "nvmf_ns_remove_host", "Hide a no_auto_visible namespace from a host NQN", {
		NQN_REQ, NSID_REQ,
		{ "host", P_STRING, 0, true, "host NQN" },
	} },
	{ "nvme_mi_endpoint_create",
	  "Create an NVMe-MI endpoint reached over MCTP (nvme-cli: mctp:NET,EID)", {
		NQN_REQ,
		{ "port", P_INT, 0, false, "port ID (default: the first two-wire port)" },
		{ "net", P_INT, 0, false, "MCTP network ID (default 1)" },
		{ "eid", P_INT, 0, false, "MCTP endpoint ID, 8-254 (default 9)" },
		{ "mtu", P_INT, 0, false, "MCTP transmission unit, 64-4096 (default 64)" },
		{ "binding", P_STRING, 0, false,
		  "mctp (the AF_MCTP router, default) or serial (DSP0253 line)" },
		{ "serial", P_STRING, 0, false,
		  "with binding serial: pty, unix:/PATH or tcp:ADDRESS:PORT" },
		{ "baud", P_INT, 0, false, "with binding serial: the line rate, for the record" },
		{ "ctrl_id0_alias", P_BOOL, 0, false,
		  "controller ID 0 names the first controller when none is 0 (default true)" },
	} },
	{ "nvme_mi_endpoint_destroy", "Destroy an NVMe-MI endpoint (by net/eid or nqn/port)", {
		{ "nqn", P_STRING, 0, false, "subsystem NQN (instead of eid)" },
		{ "port", P_INT, 0, false, "port ID, with nqn" },
		{ "net", P_INT, 0, false, "MCTP network ID, with eid (default 1)" },
		{ "eid", P_INT, 0, false, "MCTP endpoint ID (its current one)" },
	} },
	{ "nvme_mi_endpoint_list", "List NVMe-MI endpoints (current EID, MTU, counters)", {
		NQN_OPT } },
	{ "nvemud_live_update", "Hand every controller to a new nvemud (--take-over) and exit", {
		{ "socket", P_STRING, 0, true, "the new nvemud's --take-over socket" },
	} },
	{ "rpc_get_methods", "List the methods the daemon serves", { { 0 } } },
	{ "virtio_blk_controller_create",
	  "Serve a namespace or GPT partition as a virtio-blk disk on a vhost-user-blk socket", {
		{ "ctrl", P_STRING, 'c', false, "its name (default VblkCtrl<n>)" },
		{ "socket", P_STRING, 0, true, "vhost-user-blk socket (absolute path)" },
		VBLK_TARGET,
		{ "num_queues", P_INT, 0, false, "virtqueues offered (default 1, at most 64)" },
		{ "queue_size", P_INT, 0, false, "largest ring accepted (default 256, at most 1024)" },
		{ "readonly", P_BOOL, 0, false, "a read-only disk (VIRTIO_BLK_F_RO)" },
		{ "ds_max", P_INT, 0, false, "memory regions the client may register (default 8, at most 32)" },
		{ "serial", P_STRING, 0, false, "the disk's serial (GET_ID), at most 20 characters; default: its name" },
		{ "register_ds", P_STRING, 0, false, "accept only guest memory backed by this file" },
	} },
	{ "virtio_blk_controller_destroy", "Destroy a virtio-blk controller (waits for its requests)", {
		VBLK_CTRL_REQ,
	} },
	{ "virtio_blk_controller_list", "List virtio-blk controllers", {
		{ "ctrl", P_STRING, 'c', false, "only this controller" },
	} },
	{ "virtio_blk_controller_bdev_attach", "Give a detached virtio-blk controller its target", {
		VBLK_CTRL_REQ,
		VBLK_TARGET,
	} },
	{ "virtio_blk_controller_bdev_detach",
	  "Detach a virtio-blk controller's target (its I/O fails; waits for requests in flight)", {
		VBLK_CTRL_REQ,
	} },
	{ "virtio_blk_controller_suspend", "Stop taking requests from a virtio-blk controller's rings", {
		VBLK_CTRL_REQ,
	} },
	{ "virtio_blk_controller_resume", "Take requests from a virtio-blk controller's rings again", {
		VBLK_CTRL_REQ,
	} },
};

#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

static const char *prog = "nvemu-rpc";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-s SOCKET] [-t TIMEOUT] [-v] METHOD [--param value ...] [-j JSON]\n"
		"       %s METHOD --help\n"
		"\n"
		"  -s SOCKET   nvemud RPC socket (default $NVEMU_RPC_SOCKET or %s)\n"
		"  -t TIMEOUT  seconds to wait for the reply (default %.0f)\n"
		"  -v          print the request to stderr\n"
		"  -j JSON     raw params object; --param options are merged over it\n"
		"  -h, --help  this help; --version prints the version\n"
		"\n"
		"Prints the JSON result; on an error prints \"error CODE: MESSAGE\" to stderr and\n"
		"exits 1 (2 for usage errors). Methods not listed below are sent as given.\n"
		"%s status [--interval S] [--watch]: one screen of subsystems, controllers,\n"
		"IOPS and latency (like top with --watch).\n"
		"\nmethods:\n",
		prog, prog, DEFAULT_SOCKET, DEFAULT_TIMEOUT, prog);
	for (size_t i = 0; i < N_METHODS; i++)
		fprintf(f, "  %-30s %s\n", methods[i].name, methods[i].help);
}

static void method_usage(FILE *f, const struct method *m)
{
	fprintf(f, "usage: %s [-s SOCKET] %s", prog, m->name);
	for (const struct param *p = m->params; p->name; p++)
		fprintf(f, p->required ? " --%s %s" : " [--%s %s]", p->name,
			p->type == P_BOOL ? "[0|1]" : ptype_name[p->type]);
	fprintf(f, "\n\n%s\n", m->help);
	if (!m->params[0].name) {
		fprintf(f, "\nno parameters\n");
		return;
	}
	fprintf(f, "\nparameters:\n");
	for (const struct param *p = m->params; p->name; p++) {
		char opt[64];

		if (p->alias)
			snprintf(opt, sizeof(opt), "-%c, --%s", p->alias, p->name);
		else
			snprintf(opt, sizeof(opt), "    --%s", p->name);
		fprintf(f, "  %-22s %-7s %s%s\n", opt, ptype_name[p->type], p->help,
			p->required ? " (required)" : "");
	}
}

static const struct method *find_method(const char *name)
{
	for (size_t i = 0; i < N_METHODS; i++)
		if (!strcmp(methods[i].name, name))
			return &methods[i];
	return NULL;
}

static const struct param *find_param(const struct method *m, const char *name, char alias)
{
	for (const struct param *p = m->params; p->name; p++) {
		if (alias ? p->alias == alias : name && !strcmp(p->name, name))
			return p;
	}
	return NULL;
}

/* Decimal or 0x hex; a leading 0 is not octal, "010" is ten as users expect. */
static bool parse_int(const char *s, json_int_t *out)
{
	const char *d = s;
	bool neg = false;
	unsigned long long v;
	char *end;

	if (*d == '-') {
		neg = true;
		d++;
	}
	if (!*d || *d == '-' || *d == '+' || *d == ' ')
		return false;
	errno = 0;
	if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
		d += 2;
		if (!*d || *d == '-' || *d == '+' || *d == ' ')
			return false;
		v = strtoull(d, &end, 16);
	} else {
		v = strtoull(d, &end, 10);
	}
	if (errno || *end || end == d)
		return false;
	if (v > (unsigned long long)INT64_MAX + neg)
		return false;
	*out = neg ? (json_int_t)(0 - v) : (json_int_t)v;
	return true;
}

static int parse_bool(const char *s)
{
	static const char *const t[] = { "1", "true", "yes", "on" };
	static const char *const f[] = { "0", "false", "no", "off" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(s, t[i]))
			return 1;
		if (!strcasecmp(s, f[i]))
			return 0;
	}
	return -1;
}

static bool is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
			return false;
	}
	return true;
}

/* Methods outside the table: type values by their look. */
static json_t *guess_value(const char *s)
{
	json_int_t v;
	int b;

	if (parse_int(s, &v))
		return json_integer(v);
	b = parse_bool(s);
	if (b >= 0 && strcmp(s, "1") && strcmp(s, "0"))
		return json_boolean(b);
	return json_string(s);
}

static json_t *convert(const struct param *p, const char *s)
{
	json_int_t v;

	switch (p->type) {
	case P_INT:
		if (!parse_int(s, &v)) {
			fprintf(stderr, "%s: --%s: expected an integer, got '%s'\n", prog, p->name, s);
			return NULL;
		}
		return json_integer(v);
	case P_BOOL:
		switch (parse_bool(s)) {
		case 1:
			return json_true();
		case 0:
			return json_false();
		}
		fprintf(stderr, "%s: --%s: expected 0/1/true/false, got '%s'\n", prog, p->name, s);
		return NULL;
	case P_UUID:
		if (!is_uuid(s)) {
			fprintf(stderr, "%s: --%s: expected a UUID "
				"(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got '%s'\n", prog, p->name, s);
			return NULL;
		}
		return json_string(s);
	case P_JSON: {
		json_error_t jerr;
		json_t *j = json_loads(s, JSON_DECODE_ANY, &jerr);

		if (!j)
			fprintf(stderr, "%s: --%s: expected JSON, e.g. '{\"key\": \"value\"}': %s\n",
				prog, p->name, jerr.text);
		return j;
	}
	case P_STRING:
		break;
	}
	return json_string(s);
}

static bool connect_timeout(int fd, const struct sockaddr_un *sa, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int err = 0;

	if (!connect(fd, (const struct sockaddr *)sa, sizeof(*sa)))
		return true;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return false;
	if (poll(&pfd, 1, timeout_ms) <= 0) {
		errno = ETIMEDOUT;
		return false;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		errno = err ? err : errno;
		return false;
	}
	return true;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static bool send_all(int fd, const char *path, const char *req, size_t req_len,
		     long long deadline)
{
	size_t off = 0;

	while (off < req_len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t n = send(fd, req + off, req_len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			fprintf(stderr, "%s: send to %s: %s\n", prog, path, strerror(errno));
			return false;
		}
		if (poll(&pfd, 1, (int)(deadline - now_ms())) <= 0) {
			fprintf(stderr, "%s: timed out sending the request\n", prog);
			return false;
		}
	}
	return true;
}

/* Room for another read in *buf (up to MAX_REPLY). */
static bool grow(char **buf, size_t len, size_t *cap)
{
	char *nb;

	if (len + 4096 <= *cap)
		return true;
	*cap = *cap ? *cap * 2 : 16384;
	if (*cap > MAX_REPLY) {
		fprintf(stderr, "%s: reply larger than %u bytes\n", prog, MAX_REPLY);
		return false;
	}
	nb = realloc(*buf, *cap);
	if (!nb) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return false;
	}
	*buf = nb;
	return true;
}

/*
 * Read one JSON value. The daemon's stream may carry no delimiter, so parse
 * after every read until the value is complete.
 */
static json_t *read_reply(int fd, const char *path, long long deadline, double timeout)
{
	size_t len = 0, cap = 0;
	char *buf = NULL;
	json_t *reply = NULL;
	json_error_t jerr;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;

		if (!grow(&buf, len, &cap))
			break;
		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			fprintf(stderr, "%s: timed out waiting for the reply after %g s\n", prog,
				timeout);
			break;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "%s: receive from %s: %s\n", prog, path, strerror(errno));
			break;
		}
		if (n == 0) {
			reply = len ? json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, &jerr) : NULL;
			if (!reply)
				fprintf(stderr, "%s: connection closed %s\n", prog,
					len ? "in the middle of the reply" : "without a reply");
			break;
		}
		len += n;
		reply = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, &jerr);
		if (reply)
			break;
		if (json_error_code(&jerr) != json_error_premature_end_of_input) {
			fprintf(stderr, "%s: malformed reply: %s\n", prog, jerr.text);
			break;
		}
	}
	free(buf);
	return reply;
}

/* Send one request and read one JSON value back. */
static json_t *call(const char *path, double timeout, const char *req, size_t req_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = now_ms() + (long long)(timeout * 1000);
	json_t *reply = NULL;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "%s: socket path too long: %s\n", prog, path);
		return NULL;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || !connect_timeout(fd, &sa, (int)(timeout * 1000)))
		fprintf(stderr, "%s: cannot connect to %s: %s (is nvemud running?)\n", prog, path,
			strerror(errno));
	else if (send_all(fd, path, req, req_len, deadline))
		reply = read_reply(fd, path, deadline, timeout);
	if (fd >= 0)
		close(fd);
	return reply;
}

static int print_reply(json_t *reply)
{
	json_t *err = json_object_get(reply, "error");
	json_t *res;
	char *s;

	if (!json_is_object(reply)) {
		fprintf(stderr, "%s: reply is not a JSON object\n", prog);
		return 1;
	}
	if (err) {
		json_t *data = json_object_get(err, "data");
		const char *msg = json_string_value(json_object_get(err, "message"));

		fprintf(stderr, "error %" JSON_INTEGER_FORMAT ": %s\n",
			json_integer_value(json_object_get(err, "code")), msg ? msg : "(no message)");
		if (data) {
			s = json_dumps(data, JSON_INDENT(2) | JSON_ENCODE_ANY);
			if (s)
				fprintf(stderr, "%s\n", s);
			free(s);
		}
		return 1;
	}
	res = json_object_get(reply, "result");
	if (!res) {
		fprintf(stderr, "%s: reply has neither result nor error\n", prog);
		return 1;
	}
	s = json_dumps(res, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (!s)
		return 1;
	printf("%s\n", s);
	free(s);
	return fflush(stdout) ? 1 : 0;
}

/* "--bdev-name" and "--bdev_name" are the same parameter, as in rpc.py. */
static void normalize(char *name)
{
	for (; *name; name++)
		if (*name == '-')
			*name = '_';
}

struct cli {
	const char *sock;
	const char *raw; /* -j JSON */
	double timeout;
	bool verbose;
	const char *mname;
	const struct method *m; /* NULL: a method the table does not know */
};

/* Options before METHOD; returns -1 with *next at METHOD, else the exit status. */
static int parse_options(int argc, char **argv, struct cli *c, int *next)
{
	int i;

	/* getopt would permute into the method's own options. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--version")) {
			printf("nvemu-rpc %s\n", NVEMU_VERSION);
			return 0;
		} else if (!strcmp(a, "--complete-methods")) {
			/* For shell completion (tools/nvemu-rpc.bash): one method per line. */
			for (size_t k = 0; k < N_METHODS; k++)
				printf("%s\n", methods[k].name);
			printf("status\n");
			return 0;
		} else if (!strcmp(a, "--complete-params") && i + 1 < argc) {
			const struct method *m = find_method(argv[i + 1]);

			for (const struct param *p = m ? m->params : NULL; p && p->name; p++)
				printf("--%s\n", p->name);
			return 0;
		} else if (!strcmp(a, "-v")) {
			c->verbose = true;
		} else if ((!strcmp(a, "-s") || !strcmp(a, "-t") || !strcmp(a, "-j")) &&
			   i + 1 < argc) {
			const char *v = argv[++i];

			if (a[1] == 's') {
				c->sock = v;
			} else if (a[1] == 'j') {
				c->raw = v;
			} else {
				char *end;

				c->timeout = strtod(v, &end);
				if (*end || end == v || !(c->timeout > 0) || c->timeout > 86400) {
					fprintf(stderr, "%s: -t: expected seconds > 0, got '%s'\n",
						prog, v);
					return 2;
				}
			}
		} else if (!strcmp(a, "--")) {
			i++;
			break;
		} else {
			fprintf(stderr, "%s: unknown option '%s'\n", prog, a);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "%s: no method given\n", prog);
		usage(stderr);
		return 2;
	}
	*next = i;
	return -1;
}

/* The value of parameter name (p NULL: unknown) given without "=": a bool may stand alone. */
static int param_value(const struct param *p, const char *name, int argc, char **argv, int *i,
		       char **val)
{
	bool next_is_val = *i + 1 < argc;

	/* A bool may stand alone as a flag, as SNAP's "--suspended". */
	if (next_is_val && (!p || p->type == P_BOOL))
		next_is_val = parse_bool(argv[*i + 1]) >= 0 || (!p && argv[*i + 1][0] != '-');
	if (!p && next_is_val && argv[*i + 1][0] == '-')
		next_is_val = parse_int(argv[*i + 1], &(json_int_t){ 0 });
	if (next_is_val) {
		*val = argv[++*i];
	} else if (!p || p->type == P_BOOL) {
		*val = "true";
	} else {
		fprintf(stderr, "%s: --%s needs a value (%s)\n", prog, name, ptype_name[p->type]);
		return -1;
	}
	return 0;
}

/*
 * One method argument at argv[*i] (and maybe its value) into params.
 * Returns -1 to go on, else the exit status (help printed, usage error).
 */
static int parse_param(struct cli *c, int argc, char **argv, int *i, json_t *params)
{
	const struct method *m = c->m;
	char *a = argv[*i], *name, *val = NULL, *eq;
	const struct param *p = NULL;
	json_t *v;

	if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
		if (m)
			method_usage(stdout, m);
		else
			printf("%s: no help for '%s'; the daemon's methods are listed by "
			       "'%s rpc_get_methods'\n", prog, c->mname, prog);
		return 0;
	}
	if (!strcmp(a, "-j") && *i + 1 < argc) {
		c->raw = argv[++*i];
		return -1;
	}
	if (!strcmp(a, "-s") && *i + 1 < argc && !(m && find_param(m, NULL, 's'))) {
		c->sock = argv[++*i];
		return -1;
	}
	if (a[0] != '-' || !a[1] || (a[1] != '-' && a[2])) {
		fprintf(stderr, "%s: %s: unexpected argument '%s' (parameters are given "
			"as --name value)\n", prog, c->mname, a);
		return 2;
	}
	if (a[1] == '-') {
		name = a + 2;
		eq = strchr(name, '=');
		if (eq) {
			*eq = '\0';
			val = eq + 1;
		}
		normalize(name);
		if (!*name) {
			fprintf(stderr, "%s: empty parameter name\n", prog);
			return 2;
		}
		if (m)
			p = find_param(m, name, 0);
	} else {
		p = m ? find_param(m, NULL, a[1]) : NULL;
		if (!p) {
			fprintf(stderr, "%s: %s has no option -%c\n", prog, c->mname, a[1]);
			return 2;
		}
		name = (char *)p->name;
	}
	if (m && !p) {
		fprintf(stderr, "%s: %s has no parameter '%s' (see %s %s --help)\n", prog,
			c->mname, name, prog, c->mname);
		return 2;
	}
	if (!val && param_value(p, name, argc, argv, i, &val))
		return 2;
	v = p ? convert(p, val) : guess_value(val);
	if (!v)
		return 2;
	json_object_set_new(params, name, v);
	return -1;
}

/* -j JSON: an object adds what --params did not give; anything else is the params. */
static int merge_raw(const char *raw, json_t **params)
{
	json_error_t jerr;
	json_t *rp = json_loads(raw, JSON_DECODE_ANY, &jerr);

	if (!rp) {
		fprintf(stderr, "%s: -j: invalid JSON: %s (column %d)\n", prog, jerr.text,
			jerr.column);
		return 2;
	}
	if (json_is_object(rp)) {
		json_object_update_missing(*params, rp);
		json_decref(rp);
	} else if (json_object_size(*params)) {
		fprintf(stderr, "%s: -j: only an object can be combined with --params\n", prog);
		json_decref(rp);
		return 2;
	} else {
		json_decref(*params);
		*params = rp;
	}
	return 0;
}

/* The request line: compact JSON and a newline (line-framed servers; JSON whitespace). */
static char *request_line(const char *mname, json_t *params)
{
	json_t *req = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", 1, "method", mname);
	char *text, *line;
	size_t n;

	if (!req)
		return NULL;
	/* An empty params object is left out; SPDK's rpc.py does the same. */
	if (!json_is_object(params) || json_object_size(params))
		json_object_set(req, "params", params);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text)
		return NULL;
	n = strlen(text);
	line = malloc(n + 2);
	if (line) {
		memcpy(line, text, n);
		line[n] = '\n';
		line[n + 1] = '\0';
	}
	free(text);
	return line;
}

/* status.c's JSON-RPC: one call, its result or NULL. */
static json_t *status_call(const struct status_rpc *rpc, const char *method, json_t *params)
{
	const struct cli *c = rpc->priv;
	json_t *empty = json_object(), *reply, *res = NULL;
	char *line = request_line(method, params ? params : empty);

	json_decref(empty);
	if (!line)
		return NULL;
	reply = call(c->sock, c->timeout, line, strlen(line));
	free(line);
	if (reply && !json_object_get(reply, "error"))
		res = json_incref(json_object_get(reply, "result"));
	json_decref(reply);
	return res;
}

static bool status_reachable(const struct status_rpc *rpc)
{
	json_t *r = status_call(rpc, "rpc_get_methods", NULL);
	bool ok = r != NULL;

	json_decref(r);
	return ok;
}

/* nvemu-rpc status [--interval SECONDS] [--watch] */
static int run_status(const struct cli *c, int argc, char **argv, int i)
{
	struct status_rpc rpc = {
		.sock = c->sock, .call = status_call, .reachable = status_reachable,
		.priv = (void *)c,
	};
	double interval = 1.0;
	bool watch = false;

	for (; i < argc; i++) {
		char *end;

		if (!strcmp(argv[i], "--watch")) {
			watch = true;
		} else if (!strcmp(argv[i], "--interval") && i + 1 < argc) {
			interval = strtod(argv[++i], &end);
			if (*end || !(interval >= 0.1 && interval <= 3600)) {
				fprintf(stderr, "%s: --interval: seconds from 0.1 to 3600, got '%s'\n",
					prog, argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "--help")) {
			printf("usage: %s [-s SOCKET] status [--interval SECONDS] [--watch]\n"
			       "  subsystems, controllers (NVMe/TCP hosts' too) with read/write IOPS\n"
			       "  and latency over the interval (default 1 s), per-queue IOPS;\n"
			       "  --watch refreshes the screen until interrupted\n", prog);
			return 0;
		} else {
			fprintf(stderr, "%s: status: unknown option '%s'\n", prog, argv[i]);
			return 2;
		}
	}
	if (status_run(&rpc, interval, watch)) {
		fprintf(stderr, "%s: status: no answer from %s\n", prog, c->sock);
		return 1;
	}
	return 0;
}

/* Send the request, print the reply; the exit status. */
static int run(const struct cli *c, json_t *params)
{
	char *line = request_line(c->mname, params);
	json_t *reply;
	int ret;

	if (!line)
		return 1;
	if (c->verbose)
		fprintf(stderr, "-> %.*s\n", (int)strlen(line) - 1, line);
	reply = call(c->sock, c->timeout, line, strlen(line));
	free(line);
	if (!reply)
		return 1;
	if (c->verbose) {
		char *s = json_dumps(reply, JSON_COMPACT);

		fprintf(stderr, "<- %s\n", s ? s : "?");
		free(s);
	}
	ret = print_reply(reply);
	json_decref(reply);
	return ret;
}

int main(int argc, char **argv)
{
	struct cli c = { .sock = getenv("NVEMU_RPC_SOCKET"), .timeout = DEFAULT_TIMEOUT };
	json_t *params;
	int i, ret;

	if (argv[0] && strrchr(argv[0], '/'))
		prog = strrchr(argv[0], '/') + 1;
	else if (argv[0])
		prog = argv[0];
	if (!c.sock || !*c.sock)
		c.sock = DEFAULT_SOCKET;
	ret = parse_options(argc, argv, &c, &i);
	if (ret >= 0)
		return ret;
	c.mname = argv[i++];
	if (!strcmp(c.mname, "status"))
		return run_status(&c, argc, argv, i);
	c.m = find_method(c.mname);

	params = json_object();
	for (ret = -1; i < argc && ret < 0; i++)
		ret = parse_param(&c, argc, argv, &i, params);
	if (ret < 0 && c.raw)
		ret = merge_raw(c.raw, &params) ? 2 : -1;
	if (ret < 0)
		ret = run(&c, params);
	json_decref(params);
	return ret;
}
