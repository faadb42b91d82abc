/* SPDX-License-Identifier: MIT */
/*
 * The NVMe host driver: nvemu as the host of a controller it does not
 * implement (a PCIe function through VFIO or vfio-user, or an NVMe/TCP
 * target). Not to be confused with <nvemu/host.h>, the in-process host of
 * nvemu's own engine.
 *
 * A controller (struct nvemu_drv_ctrl) is brought up the way the Linux
 * driver does it: CC/CSTS handshake bounded by CAP.TO, Identify, Set
 * Features Number of Queues, I/O queue pairs, Keep Alive on fabrics, an
 * Asynchronous Event Request kept outstanding (Namespace Attribute Changed:
 * rescan). A fatal status, a command timeout or a lost connection resets
 * the controller: commands in flight fail (-ECONNRESET / -ETIMEDOUT) and
 * the driver reconnects every reconnect_delay_ms until ctrl_loss_timeout_ms
 * has passed, then the controller is failed (all I/O -ENODEV) until
 * nvemu_drv_ctrl_reset() or destroy.
 *
 * Nothing blocks except nvemu_drv_ctrl_connect() (bounded by
 * connect_timeout_ms) and reconnect attempts made from nvemu_drv_ctrl_tick()
 * (each bounded by connect_timeout_ms, a refused connection returns at
 * once). Completions are reaped by nvemu_drv_qpair_process(); with loop_ops
 * the driver watches its own fds and calls it itself. Not thread-safe: one
 * thread drives a controller (different controllers may be driven by
 * different threads).
 *
 * Every target may be hostile: a completion for a command never sent (or
 * with a wrong SQID), oversized or short PDUs, bad digests, a controller
 * that never sets RDY end in an error, a reset or a disconnect.
 */
#ifndef NVEMU_DRIVER_H
#define NVEMU_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include <nvemu/error.h>
#include <nvemu/spec.h>

struct nvemu_drv_ctrl;
struct nvemu_drv_qpair;

enum nvemu_drv_trtype {
	NVEMU_DRV_TRTYPE_PCIE = 1, /* a PCI function through VFIO (traddr: BDF) */
	NVEMU_DRV_TRTYPE_VFIO_USER, /* traddr: the vfio-user socket's directory or path */
	NVEMU_DRV_TRTYPE_TCP,
};

#define NVEMU_DRV_TRADDR_MAX 256
#define NVEMU_DRV_NQN_MAX    224 /* 223 characters and the NUL */

/* Where a controller is (SPDK's transport ID). */
struct nvemu_drv_trid {
	enum nvemu_drv_trtype trtype;
	uint8_t adrfam; /* NVMF_ADDR_FAMILY_IP4 / IP6; 0: from traddr */
	char traddr[NVEMU_DRV_TRADDR_MAX];
	char trsvcid[32];
	char subnqn[NVEMU_DRV_NQN_MAX];
};

/* "tcp", "pcie", "vfio-user" (case-insensitive); -EINVAL otherwise. */
int nvemu_drv_trtype_parse(const char *name, enum nvemu_drv_trtype *out);
const char *nvemu_drv_trtype_name(enum nvemu_drv_trtype t);
/* Whether this build has the transport (the others fail with -EPROTONOSUPPORT). */
bool nvemu_drv_trtype_supported(enum nvemu_drv_trtype t);
/*
 * SPDK's string form: "trtype:tcp adrfam:ipv4 traddr:127.0.0.1 trsvcid:4420
 * subnqn:nqn..." (keys case-insensitive, separated by spaces). Missing
 * subnqn on fabrics is an error; the error names the field.
 */
int nvemu_drv_trid_parse(const char *str, struct nvemu_drv_trid *trid, struct nvemu_error *err);

enum {
	NVEMU_DRV_LOG_ERR = 0,
	NVEMU_DRV_LOG_WARN = 1,
	NVEMU_DRV_LOG_INFO = 2,
	NVEMU_DRV_LOG_DEBUG = 3,
};

typedef void (*nvemu_drv_fd_cb)(int fd, uint32_t revents, void *arg);

/* Same shape as struct nvemu_tcp_loop_ops: the caller's event loop. */
struct nvemu_drv_loop_ops {
	void *(*add_fd)(void *loop, int fd, uint32_t events, nvemu_drv_fd_cb cb, void *arg);
	int (*mod_fd)(void *loop, void *handle, uint32_t events);
	/* Must be safe from inside the handle's own callback. */
	void (*del_fd)(void *loop, void *handle);
};

enum nvemu_drv_state {
	NVEMU_DRV_STATE_CONNECTING, /* nvemu_drv_ctrl_connect() running */
	NVEMU_DRV_STATE_ENABLED,
	NVEMU_DRV_STATE_RESETTING, /* lost: reconnecting */
	NVEMU_DRV_STATE_FAILED,	   /* gave up (ctrl_loss_timeout_ms) */
};

enum nvemu_drv_event {
	NVEMU_DRV_EV_STATE,	 /* nvemu_drv_ctrl_state() changed */
	NVEMU_DRV_EV_NS_ADDED,	 /* nsid appeared (rescan) */
	NVEMU_DRV_EV_NS_REMOVED, /* nsid went away */
	NVEMU_DRV_EV_NS_CHANGED, /* nsid's size or format changed */
};

struct nvemu_drv_opts {
	char hostnqn[NVEMU_DRV_NQN_MAX]; /* "": nqn.2014-08.org.nvmexpress:uuid:<hostid> */
	uint8_t hostid[16];		 /* all zero: a random one */
	bool hdgst, ddgst;		 /* NVMe/TCP header / data digests */
	bool nosgl;			 /* PCIe: PRP lists only */
	bool nomsi, nomsix;		 /* PCIe: interrupt kinds not to use */
	bool nointr;			 /* PCIe: poll completions, no interrupts */
	uint16_t num_io_queues;		 /* asked for; 0: 1 */
	uint16_t io_queue_size;		 /* entries; 0: 128 (bounded by CAP.MQES+1) */
	uint16_t admin_queue_size;	 /* 0: 32 */
	uint32_t kato_ms;		 /* fabrics Keep Alive; 0: 10 s */
	uint32_t connect_timeout_ms;	 /* one connect / reconnect attempt; 0: 5 s */
	uint32_t admin_timeout_ms;	 /* 0: 10 s */
	uint32_t io_timeout_ms;		 /* older: Abort, then reset (docs/driver.md); 0: 30 s */
	uint32_t reconnect_delay_ms;	 /* between attempts; 0: 1 s */
	/* Failed after being lost this long; 0: 60 s, UINT32_MAX: never. */
	uint32_t ctrl_loss_timeout_ms;
	const struct nvemu_drv_loop_ops *loop_ops; /* NULL: the caller polls */
	void *loop;
	/* NULL: warnings and errors to stderr. */
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
	/* State changes and namespace changes, called from process/tick. */
	void (*event)(void *arg, struct nvemu_drv_ctrl *ctrl, enum nvemu_drv_event ev,
		      uint32_t nsid);
	void *event_arg;
};

void nvemu_drv_opts_init(struct nvemu_drv_opts *o);

/*
 * Connect and initialise (blocking, at most connect_timeout_ms plus the
 * admin commands' admin_timeout_ms). On success the controller is ENABLED
 * with its I/O queue pairs created.
 */
int nvemu_drv_ctrl_connect(const struct nvemu_drv_trid *trid, const struct nvemu_drv_opts *opts,
			   struct nvemu_drv_ctrl **out, struct nvemu_error *err);
/* Fails what is in flight with -ECANCELED (callbacks run), disconnects, frees. */
void nvemu_drv_ctrl_destroy(struct nvemu_drv_ctrl *ctrl);
/*
 * Timers: command timeouts, Keep Alive, reconnect. Call about every 100 ms
 * (nvemu_drv_ctrl_process_admin() does not replace it).
 */
void nvemu_drv_ctrl_tick(struct nvemu_drv_ctrl *ctrl);
/* Reap admin completions (AER, Keep Alive); returns how many or -errno. */
int nvemu_drv_ctrl_process_admin(struct nvemu_drv_ctrl *ctrl);
/*
 * Reset at the next nvemu_drv_ctrl_tick() (also leaves FAILED): in-flight
 * I/O fails, then the driver reconnects.
 */
int nvemu_drv_ctrl_reset(struct nvemu_drv_ctrl *ctrl);

enum nvemu_drv_state nvemu_drv_ctrl_state(const struct nvemu_drv_ctrl *ctrl);
const char *nvemu_drv_state_name(enum nvemu_drv_state s); /* "enabled", "resetting", ... */
const struct nvemu_drv_trid *nvemu_drv_ctrl_trid(const struct nvemu_drv_ctrl *ctrl);
/* Identify Controller data (zeroes before the first successful connect). */
const struct nvme_id_ctrl *nvemu_drv_ctrl_id(const struct nvemu_drv_ctrl *ctrl);
/* Serial number without trailing spaces. */
const char *nvemu_drv_ctrl_serial(const struct nvemu_drv_ctrl *ctrl);
uint16_t nvemu_drv_ctrl_cntlid(const struct nvemu_drv_ctrl *ctrl);
/* Largest transfer of one command in bytes (MDTS and the transport's limit). */
uint32_t nvemu_drv_ctrl_max_xfer(const struct nvemu_drv_ctrl *ctrl);
/* Resets and reconnects since connect. */
uint64_t nvemu_drv_ctrl_resets(const struct nvemu_drv_ctrl *ctrl);

/* ---- namespaces */

struct nvemu_drv_ns_info {
	uint32_t nsid;
	uint64_t nsze;	   /* blocks */
	uint32_t blk_size; /* bytes of one LBA */
	bool read_only;
	uint8_t nguid[16];
	uint8_t eui64[8];
};

/* The active namespace after nsid (0: the first), 0 after the last. */
uint32_t nvemu_drv_ns_next(const struct nvemu_drv_ctrl *ctrl, uint32_t nsid);
/* -ENOENT: not active. */
int nvemu_drv_ns_get(const struct nvemu_drv_ctrl *ctrl, uint32_t nsid,
		     struct nvemu_drv_ns_info *out);
/* Re-read the namespace list now (as a Namespace Attribute Changed event does). */
int nvemu_drv_ctrl_rescan(struct nvemu_drv_ctrl *ctrl);

/*
 * "SN:n<NSID>": the namespace of the controller among ctrls[0..n) whose
 * serial number is SN (a serial may contain ':'; the last ":n" separates).
 * Returns 0, -EINVAL (not of that form), -ENOENT (no such controller or
 * namespace).
 */
int nvemu_drv_find_sn_ns(struct nvemu_drv_ctrl *const *ctrls, unsigned n, const char *name,
			 struct nvemu_drv_ctrl **ctrl, uint32_t *nsid);

/* ---- commands */

/*
 * err: 0 (cqe->status 0), -EIO (the controller returned cqe->status), or,
 * with cqe NULL: -ETIMEDOUT, -ECONNRESET (reset while in flight), -ENODEV
 * (controller failed or destroyed), -ECANCELED (destroyed).
 */
typedef void (*nvemu_drv_cb)(void *arg, int err, const struct nvemu_cqe *cqe);

enum nvemu_drv_io_op {
	NVEMU_DRV_IO_READ,
	NVEMU_DRV_IO_WRITE,
	NVEMU_DRV_IO_FLUSH,
	NVEMU_DRV_IO_WRITE_ZEROES,
	NVEMU_DRV_IO_DEALLOCATE, /* Dataset Management, one range */
};

unsigned nvemu_drv_ctrl_nr_qpairs(const struct nvemu_drv_ctrl *ctrl);
/* The idx-th I/O queue pair (idx < nvemu_drv_ctrl_nr_qpairs). */
struct nvemu_drv_qpair *nvemu_drv_ctrl_qpair(struct nvemu_drv_ctrl *ctrl, unsigned idx);
/* Commands the queue pair can hold at once. */
unsigned nvemu_drv_qpair_depth(const struct nvemu_drv_qpair *qp);
unsigned nvemu_drv_qpair_inflight(const struct nvemu_drv_qpair *qp);

/*
 * Submit an I/O command. buf holds nlb blocks (READ/WRITE), is unused
 * otherwise. Returns 0 (cb will run, never from inside this call), -EAGAIN
 * (queue full), -ENOTCONN (resetting), -ENODEV (failed), -EINVAL (range,
 * length over max_xfer, unknown namespace).
 */
int nvemu_drv_io(struct nvemu_drv_qpair *qp, uint32_t nsid, enum nvemu_drv_io_op op,
		 uint64_t slba, uint32_t nlb, void *buf, nvemu_drv_cb cb, void *arg);
/* Any command on qp (qp NULL: the admin queue); data direction from the opcode. */
int nvemu_drv_submit(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *qp,
		     const struct nvemu_sqe *cmd, void *buf, uint32_t len, nvemu_drv_cb cb,
		     void *arg);
/* Reap completions (at most max, 0: all); returns how many or -errno (the queue is lost). */
int nvemu_drv_qpair_process(struct nvemu_drv_qpair *qp, unsigned max);

/* ---- bdev_nvme: a namespace of a driven controller as a block device */

struct nvemu_bdev;
struct nvemu_bdev_nvme_ctrlr;

/*
 * What the bdevs of one controller share: I/O waiting for a free command
 * slot, the queue pair rotation. The controller outlives it.
 */
int nvemu_bdev_nvme_ctrlr_create(struct nvemu_drv_ctrl *ctrl, struct nvemu_bdev_nvme_ctrlr **out);
/* -EBUSY while a bdev of it exists. */
int nvemu_bdev_nvme_ctrlr_destroy(struct nvemu_bdev_nvme_ctrlr *c);
/*
 * A bdev over namespace nsid (its LBA size and capacity). I/O is split at
 * the controller's largest transfer and waits for a free slot when the
 * queues are full; I/O while the controller is resetting or failed, or to
 * a namespace that went away, fails with -EIO (no retry).
 */
int nvemu_bdev_nvme_create(const char *name, struct nvemu_bdev_nvme_ctrlr *c, uint32_t nsid,
			   struct nvemu_bdev **out, struct nvemu_error *err);
/* The controller and NSID of a bdev_nvme bdev; -EINVAL for other bdevs. */
int nvemu_bdev_nvme_get(struct nvemu_bdev *bdev, struct nvemu_drv_ctrl **ctrl, uint32_t *nsid);

#endif
