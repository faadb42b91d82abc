/* SPDX-License-Identifier: MIT */
/*
 * The daemon's state: what the control plane created, by name. The engine
 * (libnvemu) knows nothing of names; this is the configfs side.
 */
#ifndef NVEMUD_DAEMON_H
#define NVEMUD_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <jansson.h>

#include <nvemu/ctrl-state.h>
#include <nvemu/nvemu.h>
#include <nvemu/vhost-blk.h>

#include "log.h"

#define NVEMUD_DEFAULT_SOCKET "/var/tmp/nvemu.sock"
#define NVEMUD_DEFAULT_NQN "nqn.2014-08.io.nvemu:default"
#define NVEMUD_CTRL_NAME_MAX 32
extern const char NVEMUD_CTRL_DESTROYING[]; /* a struct nvemud_ctrl busy reason */

enum nvemud_log_level {
	NVEMUD_LOG_ERR,
	NVEMUD_LOG_WARN,
	NVEMUD_LOG_INFO,
	NVEMUD_LOG_DEBUG,
	NVEMUD_LOG_TRACE,
};

struct loop;
struct loop_src;
struct rpc_server;
struct nvemu_tcp_target;
struct nvemud_mi;
struct nvemud_nvme;
struct nvemud_reactors;

struct nvemud_bdev {
	struct nvemu_bdev *bdev;
	char *filename;	     /* file bdevs */
	bool direct;	     /* file bdevs: opened with O_DIRECT */
	bool sized;	     /* file bdevs: num_blocks given (else the file's size) */
	struct loop_src *src; /* completion fd, when the backend has one */
};

struct nvemu_mctp_router;
struct nvemu_mctp_ep;
struct nvemu_mi_ep;

struct mi_serial;

struct mi_endpoint {
	struct nvemu_subsys *subsys;
	uint16_t port;
	struct nvemu_mi_ep *mi;
	struct nvemu_mctp_ep *mctp;
	/* A DSP0253 serial line (mi-serial.c) instead of the AF_MCTP router; or NULL. */
	struct mi_serial *serial;
};

/* NVMe-MI endpoints and the AF_MCTP router (mi-endpoints.c). */
struct nvemud_mi {
	struct nvemu_mctp_router *router;
	struct loop_src *router_src;
	struct mi_endpoint *eps; /* creation order */
	unsigned nr_eps;
	struct loop_src *aem_src; /* polls the endpoints' Asynchronous Events */
	bool aem_active;	  /* some endpoint has AEs enabled: the fast tick */
};

struct nvemud_vfu;
struct teardown;
struct rpc_call_ctx;

struct nvemud_ctrl {
	char name[NVEMUD_CTRL_NAME_MAX];
	struct nvemu_subsys *subsys;
	uint16_t cntlid;
	struct nvemud_vfu *vfu; /* served over vfio-user (vfu-glue.c), else NULL */
	/* Why RPCs must leave it alone (NVEMUD_CTRL_DESTROYING, ...), else NULL. */
	const char *busy;
	/* SNAP's dynamic_msix (a PF's) and queue_core_alloc_policy ("on-demand" default). */
	bool dynamic_msix;
	const char *core_policy;
	struct nvemud_fwd *fwd; /* admin command forwarding (admin-fwd.c), else NULL */
	/* Suspended with live_update_notifier (or taken over): handed to the next nvemud. */
	bool live_update;
};

/* ---- emulated PCIe functions (functions.c, rpc-emulation.c) */
#define NVEMUD_MAX_PFS	    16
#define NVEMUD_FUNC_DIR_MAX 80

enum nvemud_func_state {
	NVEMUD_FUNC_PRESENT,
	NVEMUD_FUNC_DETACH_PREPARED, /* emulation_device_detach_prepare: no new controller */
	NVEMUD_FUNC_DETACHED,	     /* emulation_device_detach: gone until reconfigured */
};

struct nvemud_func {
	bool is_vf;
	uint16_t pf_id, vf_id; /* vf_id: 0-based; VF Number vf_id + 1 */
	uint32_t vhca_id;
	char vuid[40];
	char bdf[16];
	char socket[108];
	char ctrl[NVEMUD_CTRL_NAME_MAX]; /* the controller opened on it, "" none */
	enum nvemud_func_state state;
};

struct nvemud {
	struct loop *loop; /* NULL in-process (tests): backends are polled directly */
	struct rpc_server *server;
	int log_level;
	struct nvemud_logger logger; /* sinks and the rate limiter (log.c) */

	struct nvemu_subsys **subsys; /* creation order */
	unsigned nr_subsys;

	struct nvemud_bdev *bdevs; /* creation order */
	unsigned nr_bdevs;
	struct loop_src *bdev_flusher; /* starts batched submissions; while bdevs exist */

	struct nvemud_ctrl *ctrls; /* creation order */
	unsigned nr_ctrls;
	unsigned next_ctrl_idx; /* NVMeCtrl<idx> */

	/*
	 * NVMe/TCP target (rpc-nvmf.c). On d->loop with a 100 ms tick; in
	 * process (loop NULL) it has its own epoll loop, driven by
	 * nvemu_tcp_target_run_once. NULL after nvemud_tcp_stop().
	 */
	struct nvemu_tcp_target *tcp;
	struct loop_src *tcp_tick;

	struct nvemud_mi *mi; /* NVMe-MI endpoints and the AF_MCTP router (rpc-mi.c) */
	struct nvemud_nvme *nvme; /* controllers driven by bdev_nvme (rpc-bdev-nvme.c) */

	/* Teardowns waiting for I/O to drain (teardown.c), and their timers. */
	LIST_HEAD(, teardown) teardowns;
	/*
	 * Without a loop, a deferred reply is waited for by calling this until
	 * *done (set by nvemud_new: rpc.c must not call up into teardown.c).
	 */
	void (*drive)(struct nvemud *d, const bool *done, unsigned timeout_ms);
	struct loop_src *td_tick, *td_kick;
	/* The request being run, for rpc_defer (rpc.c). */
	struct rpc_call_ctx *call;
	unsigned config_depth; /* load_config running */
	/* Start-up (-c): a bdev whose file cannot be opened is skipped with its users. */
	bool lenient_config;
	json_t *skipped; /* what lenient loading left out: bdev names, "nqn/nsid" */
	unsigned next_nsm_bdev; /* names of bdevs made for Namespace Management */

	LIST_HEAD(, nvemud_vblk) vblks; /* virtio-blk exports (vblk-exports.c) */
	unsigned next_vblk_idx;		/* the next VblkCtrl<idx> to try (0: 1) */

	struct nvemud_metrics *metrics; /* --metrics (metrics.c), or NULL */

	LIST_HEAD(, ana_pending) ana_pending; /* ANA change -> next state (ana-transition.c) */
	/* Reactor threads for NVMe/TCP I/O queues (reactor.c), or NULL: all on loop. */
	struct nvemud_reactors *reactors;
	/* PCIe functions: PF p at [p * (1 + num_vfs)], its VFs after it. */
	struct nvemud_func *funcs;
	unsigned nr_funcs, num_pfs, num_vfs;
	char func_dir[NVEMUD_FUNC_DIR_MAX + 1]; /* where their sockets go */
	LIST_HEAD(, nvemud_rbd) rbds; /* RBD bdevs' creation parameters (rpc-bdev-rbd.c) */
	LIST_HEAD(, rbd_job) rbd_jobs; /* bdev_rbd_create calls connecting on their threads */
	struct nvemud_key *keys; /* the keyring (keyring.c), creation order */
	unsigned nr_keys;
};

/* pfs PFs with vfs VFs each, sockets in dir; -EBUSY while a controller is open on one. */
int nvemud_funcs_configure(struct nvemud *d, unsigned pfs, unsigned vfs, const char *dir,
			   struct nvemu_error *err);
void nvemud_funcs_free(struct nvemud *d);
struct nvemud_func *nvemud_func_pf(struct nvemud *d, unsigned pf_id);
/* The function controller name is open on, or NULL. */
struct nvemud_func *nvemud_func_of_ctrl(struct nvemud *d, const char *name);
/* Registry hook: c is forgotten (nvemud_del_ctrl). */
void nvemud_func_ctrl_gone(struct nvemud *d, struct nvemud_ctrl *c);
/* Controllers open on pf's VFs; the first one's name into *name. */
unsigned nvemud_func_vf_ctrls(struct nvemud *d, const struct nvemud_func *pf, const char **name);
struct nvemud_ctrl *nvemud_func_parent_ctrl(struct nvemud *d, const struct nvemud_func *vf);

/* ---- ANA change transitions (ana-transition.c) */
/* How long a listener stays in ANA change by default: well within ANATT (10 s). */
#define NVEMUD_ANA_CHANGE_MS 1000
/* After ms, port_id's group grp (1..) moves from change to next, if still in change. */
int nvemud_ana_schedule(struct nvemud *d, struct nvemu_subsys *s, uint16_t port_id,
			uint32_t grp, enum nvemu_ana_state next, unsigned ms);
/* Forget pending transitions of nqn/port_id (NULL: all), grp (0: every group). */
void nvemud_ana_cancel(struct nvemud *d, const char *nqn, uint16_t port_id, uint32_t grp);

/* ---- the keyring (keyring.c) */
struct nvemud_key {
	char *name;
	char *path;
	char *secret;
};

/* The secret of the key named name, NULL if none. */
const char *nvemud_key_secret(struct nvemud *d, const char *name);
void nvemud_keyring_free(struct nvemud *d);
/* nvmf_set_config's params when not the defaults (rpc-nvmf.c), else NULL. */
json_t *nvemud_nvmf_config_json(struct nvemud *d);
/* keyring_file_add_key calls for save_config. */
void nvemud_keyring_save(struct nvemud *d, json_t *calls);

/* ---- the instance (instance.c) */
/* loop may be NULL. */
struct nvemud *nvemud_new(struct loop *loop, int log_level);
struct nvemud_reactor_params;
/* With reactor threads for NVMe/TCP I/O queues (reactor.h; rp NULL: none). */
struct nvemud *nvemud_new_reactors(struct loop *loop, int log_level,
				   const struct nvemud_reactor_params *rp);
/* Destroys every subsystem and bdev (after draining I/O). */
void nvemud_free(struct nvemud *d);
/* The seed-000 default configuration. */
int nvemud_load_default(struct nvemud *d, struct nvemu_error *err);
/* The default configuration's TCP listener (allow any host) on the default subsystem. */
int nvemud_add_default_listener(struct nvemud *d, const char *traddr, const char *trsvcid,
				struct nvemu_error *err);

/* ---- the NVMe/TCP target (nvmf-target.c) */
/* Create d->tcp, on d->loop if there is one; -1 (logged) on failure. */
int nvemud_tcp_start(struct nvemud *d);
/* Close every TCP listener and connection and remove the host controllers (shutdown). */
void nvemud_tcp_stop(struct nvemud *d);
/* {trtype, adrfam, traddr, trsvcid} as nvmf_* methods show a listen address. */
json_t *nvemud_tcp_addr_json(const char *traddr, const char *trsvcid, uint8_t adrfam);
/* The rest are no-ops once the target is stopped. */
/* Port port_id is a TCP listener's (*listener: its add_listener params) or still has hosts. */
bool nvemud_tcp_owns_port(struct nvemud *d, struct nvemu_subsys *s, uint16_t port_id,
			  json_t **listener);
bool nvemud_tcp_owns_ctrl(struct nvemud *d, const struct nvemu_ctrl *ctrl);
/* Attach to / detach from every host controller of s (hosts get a Namespace Attribute AEN). */
void nvemud_tcp_ns_added(struct nvemud *d, struct nvemu_subsys *s, uint32_t nsid);
void nvemud_tcp_ns_removed(struct nvemud *d, struct nvemu_subsys *s, uint32_t nsid);
/* Close its listeners and end its host associations; before destroying s. */
void nvemud_tcp_remove_subsys(struct nvemud *d, struct nvemu_subsys *s);

/* ---- NVMe-MI endpoints (mi-endpoints.c) */
#define NVEMUD_MI_SERIAL_SPEC_MAX 128

struct nvemud_mi_ep_opts {
	unsigned net;
	uint8_t eid;
	unsigned mtu; /* 0: the MCTP baseline */
	/*
	 * NULL: reached through the AF_MCTP router (when it runs). Else the
	 * serial line it is bound to: "pty", "unix:/PATH" or "tcp:ADDRESS:PORT".
	 */
	const char *serial;
	unsigned baud; /* for the record (a pty or socket has no rate) */
	bool no_ctrl0_alias; /* nvemu_mi_ep_set_ctrl0_alias(false) */
};

/* An MI endpoint on port of s at MCTP (net, eid). */
int nvemud_mi_add_ep(struct nvemud *d, struct nvemu_subsys *s, uint16_t port,
		     const struct nvemud_mi_ep_opts *o, struct nvemu_error *err);
/* mi-serial.c: the serial line of an endpoint. */
int nvemud_mi_serial_open(struct nvemud *d, struct nvemu_mctp_ep *ep, const char *spec,
			  unsigned baud, struct mi_serial **out, struct nvemu_error *err);
void nvemud_mi_serial_close(struct mi_serial *s);
const char *nvemud_mi_serial_spec(const struct mi_serial *s);
/* The pty to open, the socket path or the address:port actually bound. */
const char *nvemud_mi_serial_name(const struct mi_serial *s);
unsigned nvemud_mi_serial_baud(const struct mi_serial *s);
bool nvemud_mi_serial_connected(const struct mi_serial *s);
/* The AF_MCTP router on path (NULL or "": NVEMU_MCTP_SOCKET_DEFAULT); needs d->loop. */
int nvemud_mi_start(struct nvemud *d, const char *path, struct nvemu_error *err);
/* Close the router and remove its socket file; endpoints stay. */
void nvemud_mi_stop(struct nvemud *d);
/* Destroy endpoint i of d->mi. */
void nvemud_mi_del_ep(struct nvemud *d, unsigned i);
/* Destroy every endpoint (before the subsystems). */
void nvemud_mi_free(struct nvemud *d);
bool nvemud_mi_owns_port(struct nvemud *d, struct nvemu_subsys *s, uint16_t port);
/* Destroy the endpoints of s; before destroying s. */
void nvemud_mi_remove_subsys(struct nvemud *d, struct nvemu_subsys *s);
/* Wait until no controller has commands in flight (or timeout), then flush file bdevs. */
void nvemud_drain(struct nvemud *d, unsigned timeout_ms);
/* Reap completions of every backend; returns how many completed. */
int nvemud_poll_backends(struct nvemud *d);

/* Control characters (peer-supplied strings included) are written escaped. */
void nvemud_log(struct nvemud *d, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Back Namespace Management namespaces of s with named RAM bdevs (saved by save_config). */
void nvemud_subsys_setup(struct nvemud *d, struct nvemu_subsys *s);

/* ---- vfio-user (vfu-glue.c) */
/* Serve c's PCIe function on a vfio-user socket at path (absolute). */
int nvemud_vfu_start(struct nvemud *d, struct nvemud_ctrl *c, const char *path,
		     struct nvemu_error *err);
/* Disconnect the guest, reset the controller, remove the socket; no-op without one. */
void nvemud_vfu_stop(struct nvemud *d, struct nvemud_ctrl *c);
/* The same for every controller of s; before forgetting them (nvemud_del_subsys). */
void nvemud_vfu_stop_subsys(struct nvemud *d, struct nvemu_subsys *s);
const char *nvemud_vfu_path(const struct nvemud_ctrl *c); /* NULL: not served */
bool nvemud_vfu_connected(const struct nvemud_ctrl *c);
/* NVMe-MI PCIe Command Set ops (arg: the nvemud): the vfio-user function's config space. */
extern const struct nvemu_mi_pcie_ops nvemud_mi_pcie_ops;
/* A controller of this daemon serving path, or NULL. */
struct nvemud_ctrl *nvemud_vfu_find(struct nvemud *d, const char *path);
/* PCIe queue state into the sqs/cqs arrays; returns the "pcie" object. */
json_t *nvemud_vfu_debug(struct nvemud_ctrl *c, struct nvemu_ctrl *ctrl, json_t *sqs,
			 json_t *cqs);

/* ---- admin command forwarding (admin-fwd.c) */
#define NVEMUD_FWD_TIMEOUT_DEFAULT_MS 1000
#define NVEMUD_FWD_TIMEOUT_MAX_MS     10000
struct rpc_err;
/* nvme_controller_create's forwarding params are valid (nothing is created). */
int nvemud_fwd_check(struct nvemud *d, json_t *params, struct rpc_err *e);
/* Forward c's commands as params say (no-op without them); binds ctrl. */
int nvemud_fwd_setup(struct nvemud *d, struct nvemud_ctrl *c, struct nvemu_ctrl *ctrl,
		     json_t *params, struct rpc_err *e);
/* Bind ctrl (re-created by nvme_controller_modify) to c's forwarding. */
void nvemud_fwd_bind(struct nvemud_ctrl *c, struct nvemu_ctrl *ctrl);
/* Ends the commands it holds (the engine answers them), closes, unbinds. */
void nvemud_fwd_free(struct nvemud_ctrl *c);
/* Its create params into p (save_config, nvme_controller_list). */
void nvemud_fwd_save(const struct nvemud_ctrl *c, json_t *p);
/* Counters for nvme_controller_debug_get; NULL without forwarding. */
json_t *nvemud_fwd_stats_json(const struct nvemud_ctrl *c);
/* A reply from the forwarder, as parsed; data points into the buffer parsed. */
struct nvemud_fwd_msg {
	uint32_t tag;
	uint16_t status, flags;
	uint32_t dw0, dw1, data_len;
	const uint8_t *data;
};
/* One reply at buf: its length, 0 while incomplete, -1 when malformed (the stream is lost). */
int nvemud_fwd_parse_reply(const uint8_t *buf, size_t len, struct nvemud_fwd_msg *m);
/* A parsed reply fits a command of opcode opc: 0, else -1. */
int nvemud_fwd_check_reply(const struct nvemud_fwd_msg *m, uint8_t opc);

/* ---- live update (live-update.c, vfu-glue.c): docs/live-update.md */
/* Fetching from the guest's queues stops / goes on (no-op when not served over vfio-user). */
void nvemud_vfu_pause(struct nvemud_ctrl *c, bool paused);
int nvemud_vfu_save(struct nvemud_ctrl *c, uint8_t **blob, size_t *len, int **fds,
		    unsigned *nfds, struct nvemu_error *err);
/* The new daemon has it: forget the guest without touching it. */
void nvemud_vfu_release(struct nvemud *d, struct nvemud_ctrl *c);
/* Serve c on path from a handed-over server state and c's snapshot. */
int nvemud_vfu_restore(struct nvemud *d, struct nvemud_ctrl *c, const char *path,
		       const uint8_t *blob, size_t len, const int *fds, unsigned nfds, json_t *snap,
		       struct rpc_err *e);
/*
 * nvemud --take-over PATH: receive a running daemon's state on PATH; 0 or
 * -1 (logged). stop_fd readable (a signalfd) ends the wait.
 */
int nvemud_take_over(struct nvemud *d, const char *path, unsigned timeout_ms, int stop_fd);
/* The handover message, checked against the nfds descriptors that came with it. */
int nvemud_lu_parse(const char *json, size_t len, unsigned nfds, json_t **out, struct rpc_err *e);

/* ---- virtio-blk exports over vhost-user-blk (vblk-exports.c, rpc-virtio-blk.c) */
struct nvemu_vblk;
struct nvemud_vblk {
	LIST_ENTRY(nvemud_vblk) link; /* d->vblks, creation order */
	char name[NVEMUD_CTRL_NAME_MAX];
	struct nvemu_vblk *vb;
	/* virtio_blk_controller_create's params, the target as given (save_config). */
	json_t *params;
	bool detaching; /* virtio_blk_controller_bdev_detach waits for its requests */
};
/* Register vb as name; params: the create call's (a new reference is taken). */
struct nvemud_vblk *nvemud_vblk_add(struct nvemud *d, const char *name, struct nvemu_vblk *vb,
				    json_t *params);
struct nvemud_vblk *nvemud_vblk_find(struct nvemud *d, const char *name);
/* Out of the registry; the export is freed once its requests drained, then done(arg). */
void nvemud_vblk_del(struct nvemud *d, struct nvemud_vblk *v, void (*done)(void *arg), void *arg);
/* The controller or port is an export's (not saved, not listed as the user's). */
bool nvemud_vblk_owns_ctrl(struct nvemud *d, const struct nvemu_ctrl *ctrl);
bool nvemud_vblk_owns_port(struct nvemud *d, struct nvemu_subsys *s, uint16_t port_id);
/* Exports of namespace nsid of s (every namespace with nsid 0) are detached: their I/O fails. */
void nvemud_vblk_ns_removed(struct nvemud *d, struct nvemu_subsys *s, uint32_t nsid);
/* Shutdown: destroy every export, waiting up to timeout_ms for their requests. */
void nvemud_vblk_free_all(struct nvemud *d, unsigned timeout_ms);
/* nvemu_vblk_loop_ops on d->loop. */
const struct nvemu_vblk_loop_ops *nvemud_vblk_loop_ops(void);
void nvemud_vblk_log(void *arg, int level, const char *msg);

/* ---- bdev_nvme (rpc-bdev-nvme.c) */
/* Disconnect every driven controller; after their bdevs are gone (nvemud_free). */
void nvemud_nvme_free(struct nvemud *d);
/* ---- bdev_rbd (rpc-bdev-rbd.c): forget the RBD bdevs' parameters (after the bdevs are gone). */
void nvemud_rbd_free(struct nvemud *d);
/* The bdev of "SN:n<NSID>": a namespace of a driven controller by its serial number. */
struct nvemu_bdev *nvemud_nvme_find_sn(struct nvemud *d, const char *name);

/* ---- lookups */
struct nvemu_subsys *nvemud_find_subsys(struct nvemud *d, const char *nqn);
struct nvemud_bdev *nvemud_find_bdev(struct nvemud *d, const char *name);
struct nvemud_ctrl *nvemud_find_ctrl(struct nvemud *d, const char *name);
/* The name of a controller, NULL if it has none (not created by the daemon). */
const char *nvemud_ctrl_name(struct nvemud *d, struct nvemu_subsys *s, uint16_t cntlid);
struct nvemu_ctrl *nvemud_ctrl_get(struct nvemud_ctrl *c);

/* ---- registry updates (no validation: callers checked) */
int nvemud_add_subsys(struct nvemud *d, struct nvemu_subsys *s);
/* Drops it from the list and forgets its controllers' names (does not destroy, nor stop their vfio-user servers). */
void nvemud_del_subsys(struct nvemud *d, struct nvemu_subsys *s);
/*
 * Starts what every registered bdev queued during this loop iteration (one
 * system call each); *again when one could not, so the caller's loop comes
 * back soon instead of sleeping. Every loop that submits I/O runs it: the
 * main loop and each reactor (under the model lock).
 */
int nvemud_bdevs_flush(struct nvemud *d, bool *again);
int nvemud_add_bdev(struct nvemud *d, struct nvemu_bdev *b, const char *filename);
void nvemud_del_bdev(struct nvemud *d, struct nvemud_bdev *b);
/* name NULL: the next NVMeCtrl<n>. */
struct nvemud_ctrl *nvemud_add_ctrl(struct nvemud *d, const char *name,
				    struct nvemu_subsys *s, uint16_t cntlid);
void nvemud_del_ctrl(struct nvemud *d, struct nvemud_ctrl *c);

/* ---- helpers shared by the method files */
uint64_t nvemud_now_ns(void); /* CLOCK_MONOTONIC */
/* A counter of queue qid: "requests", "completions", ... (snapshot.c, from the state table). */
uint64_t nvemud_queue_stat(const struct nvemu_ctrl *ctrl, enum nvemu_state_scope scope,
			   unsigned qid, const char *name);
/* ---- systemd notification (sd-notify.c); no-ops without $NOTIFY_SOCKET */
int nvemud_sd_notify(const char *state);
struct loop;
struct loop_src;
/* WATCHDOG=1 pings at half of $WATCHDOG_USEC from the loop; NULL if not asked. */
struct loop_src *nvemud_sd_watchdog_start(struct loop *loop);
/*
 * Socket activation: the listening unix socket systemd passed (the one
 * named name in $LISTEN_FDNAMES, else the first), its path in path; -1 when
 * none was passed to this process, -2 (msg set) when what was passed is not
 * usable. The LISTEN_* variables are removed.
 */
int nvemud_sd_listen_fd(const char *name, char *path, size_t path_size, char *msg,
			size_t msg_size);

/* ---- Prometheus metrics over HTTP (metrics.c) */
/* Listen on "ADDR:PORT" / "[ADDR6]:PORT" (port 0: any, logged); needs d->loop. */
int nvemud_metrics_start(struct nvemud *d, const char *spec, struct nvemu_error *err);
void nvemud_metrics_stop(struct nvemud *d);
/* The exposition text (malloc'd; *len set), m NULL: without the process metrics. */
char *nvemud_metrics_render(struct nvemud *d, struct nvemud_metrics *m, size_t *len);
/*
 * An HTTP/1.x request head in buf: 0 while incomplete, else the status to
 * answer (200: a GET, its target in path).
 */
int nvemud_http_parse_request(const char *buf, size_t len, char *path, size_t path_size);

void nvemud_uuid_unparse(const uint8_t uuid[16], char out[37]);
void nvemud_hex(const void *buf, size_t len, char *out); /* out: 2*len+1 */
int nvemud_unhex(const char *s, void *buf, size_t len);	 /* exact length */
bool nvemud_all_zero(const void *buf, size_t len);

#endif
