/* SPDX-License-Identifier: MIT */
/*
 * The NVMe host driver's internals: the core's structures (controller,
 * queue pair, request) and struct nvemu_drv_transport_ops, what a host
 * transport (NVMe/TCP, PCIe over VFIO or vfio-user) gives the core.
 *
 * Division of work: the core owns command identifiers (a request's CID is
 * its slot in the queue pair), the controller state machine (CC/CSTS,
 * Identify, queues, Keep Alive, AER, timeouts, reset and reconnect) and
 * validates every completion a transport hands it (CID in range and in
 * flight, SQID). The transport owns the wire or the memory: sockets and
 * PDUs, or BARs, rings, doorbells, interrupts, and the data mapping of each
 * command (in-capsule data and R2T/H2CData/C2HData for TCP, PRP lists or
 * SGLs for PCIe).
 */
#ifndef NVEMU_DRIVER_INTERNAL_H
#define NVEMU_DRIVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <nvemu/driver.h>

struct nvemu_drv_qpair;
struct nvemu_drv_ctrl;

/* One command slot of a queue pair; cid is its index. */
struct drv_req {
	struct nvemu_drv_qpair *qp;
	uint16_t cid;
	bool inflight;
	struct nvemu_sqe cmd; /* cid filled by the core */
	void *buf;
	uint32_t len;
	enum nvemu_xfer_dir dir; /* from the opcode */
	nvemu_drv_cb cb;
	void *arg;
	uint64_t start_ns;
	uint32_t timeout_ms; /* 0: none (AER) */
	bool timed_out;	     /* fails with -ETIMEDOUT when the reset comes */
	bool abort_sent;     /* timed out once: an Abort for it is out */
	uint8_t dsm[16];     /* a Dataset Management range (the command's data) */
	/* Transport scratch: bytes moved so far (TCP), a PRP list page (PCIe)... */
	uint32_t xfered;
	void *tr_priv;
	SLIST_ENTRY(drv_req) free_link;
};

struct nvemu_drv_qpair {
	struct nvemu_drv_ctrl *ctrl;
	uint16_t qid;	/* 0: admin */
	uint16_t size;	/* queue entries (SQSIZE + 1) */
	uint16_t depth; /* commands held at once: size - 1 */
	struct drv_req *reqs;
	SLIST_HEAD(, drv_req) free_reqs;
	unsigned inflight;
	/*
	 * Set by the transport once the queue carries commands (before it sends
	 * Connect on fabrics); cleared on loss and by qpair_delete/disconnect.
	 */
	bool connected;
	void *tr;	/* the transport's queue state */
	void *loop_h;	/* loop_ops handle of the transport's fd */
	int loop_fd;
	uint32_t loop_events;
	unsigned in_process; /* nesting of nvemu_drv_qpair_process */
};

struct drv_ns {
	struct nvemu_drv_ns_info info;
};

struct nvemu_drv_transport_ops {
	const char *name; /* "tcp", "pcie", "vfio-user" */
	enum nvemu_drv_trtype trtype;
	bool fabrics; /* Connect and Property Get/Set; no Create/Delete I/O Queue */

	/* Allocate ctrl->tr from ctrl->trid/opts (open the device, resolve the address). */
	int (*create)(struct nvemu_drv_ctrl *ctrl, struct nvemu_error *err);
	/*
	 * Make the admin queue pair aq usable once CC.EN=1 and CSTS.RDY=1:
	 * fabrics connect and send Connect (the controller is enabled by the
	 * core afterwards through Property Set); PCIe disables the controller
	 * (CC.EN=0, wait !RDY) and programs AQA/ASQ/ACQ. The core then writes
	 * CC and waits for RDY. Bounded by timeout_ms.
	 */
	int (*connect_admin)(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *aq,
			     unsigned timeout_ms, struct nvemu_error *err);
	/* Controller registers (properties): size 4 or 8; 0 or -errno. */
	int (*reg_read)(struct nvemu_drv_ctrl *ctrl, uint32_t off, unsigned size, uint64_t *val);
	int (*reg_write)(struct nvemu_drv_ctrl *ctrl, uint32_t off, unsigned size, uint64_t val);
	/*
	 * Make I/O queue pair qp (qp->qid, qp->size set): PCIe sends Create
	 * I/O CQ/SQ through drv_exec_sync on the admin queue, fabrics connect
	 * a queue and send Connect. Bounded by timeout_ms.
	 */
	int (*qpair_create)(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *qp,
			    unsigned timeout_ms, struct nvemu_error *err);
	/* Drop the queue's transport state (no commands are in flight any more). */
	void (*qpair_delete)(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *qp);
	/*
	 * Send req (cid set, data described by buf/len/dir): the transport maps
	 * the data. 0, or -errno (the core fails the command; -ENOTCONN: the
	 * queue is lost).
	 */
	int (*submit)(struct nvemu_drv_qpair *qp, struct drv_req *req);
	/*
	 * Move bytes and reap completions (at most max, 0: all), handing each
	 * CQE to drv_complete(). Returns completions or -errno when the queue
	 * is lost (a protocol error, a digest error, the peer went away): the
	 * core then resets the controller.
	 */
	int (*process)(struct nvemu_drv_qpair *qp, unsigned max);
	/* A waitable fd (EPOLLIN: call process), -1: poll only. */
	int (*get_fd)(struct nvemu_drv_qpair *qp);
	/* EPOLLIN, or EPOLLIN|EPOLLOUT while the transport has bytes to send. */
	uint32_t (*get_events)(struct nvemu_drv_qpair *qp);
	/* Largest data transfer of one command the transport takes (bytes). */
	uint32_t (*max_xfer)(struct nvemu_drv_ctrl *ctrl);
	/*
	 * Controller reset: tear down every queue's transport state (admin
	 * included). In-flight commands are failed by the core afterwards.
	 */
	void (*disconnect)(struct nvemu_drv_ctrl *ctrl);
	/* Free ctrl->tr (after disconnect). */
	void (*destroy)(struct nvemu_drv_ctrl *ctrl);
};

struct nvemu_drv_ctrl {
	struct nvemu_drv_trid trid;
	struct nvemu_drv_opts opts; /* defaults filled in */
	const struct nvemu_drv_transport_ops *ops;
	void *tr;

	enum nvemu_drv_state state;
	uint64_t cap;
	uint32_t vs;
	uint16_t cntlid;
	struct nvme_id_ctrl id;
	char serial[21];
	uint32_t max_xfer;

	struct nvemu_drv_qpair *admin;
	struct nvemu_drv_qpair **qps;
	unsigned nr_qps;

	struct drv_ns *ns; /* active namespaces, ascending nsid */
	unsigned nr_ns;

	bool aer_outstanding;
	bool aer_log_pending; /* an AER completed: read log page aer_log, re-arm */
	uint8_t aer_log;
	bool rescan_pending;
	bool ka_outstanding;
	bool reset_pending; /* a queue was lost: reset at the next tick */
	uint64_t last_ka_ns;
	uint64_t lost_ns;	    /* when it left ENABLED */
	uint64_t next_reconnect_ns; /* RESETTING: next attempt */
	uint64_t resets;
	unsigned slow_attempts; /* reconnects in a row that blocked (timed out) */
	unsigned in_tick;
};

/* ---- core.c */
uint64_t drv_now_ns(void);
void drv_log(struct nvemu_drv_ctrl *ctrl, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * A completion from the wire or the CQ ring (status without the phase tag:
 * DW3 bits 31:17 shifted down by one, as struct nvemu_cqe holds it). Returns 0, or -EPROTO when it
 * names no command in flight or the wrong queue (the transport reports the
 * queue lost).
 */
int drv_complete(struct nvemu_drv_qpair *qp, const struct nvemu_cqe *cqe);
/* The command in flight with this CID, NULL if none (C2HData, R2T). */
struct drv_req *drv_req_lookup(struct nvemu_drv_qpair *qp, uint16_t cid);
/* The transport lost the queue outside process(): reset at the next tick. */
void drv_qpair_lost(struct nvemu_drv_qpair *qp, const char *why);
/*
 * Run one command to completion on qp, polling it for at most timeout_ms
 * (initialisation, Connect, Property Get/Set, Create I/O queues). Returns
 * 0, -EIO (*status set), -ETIMEDOUT or another -errno.
 */
int drv_exec_sync(struct nvemu_drv_qpair *qp, const struct nvemu_sqe *cmd, void *buf,
		  uint32_t len, unsigned timeout_ms, struct nvemu_cqe *cqe);
/* A free slot (NULL: queue full), then fill cmd/buf/len/cb/arg and send it. */
struct drv_req *drv_req_get(struct nvemu_drv_qpair *qp);
void drv_req_put(struct drv_req *req);
/* Hand req to the transport; on error the slot is free again and cb is not called. */
int drv_req_send(struct drv_req *req);
/* Fail every command in flight on qp with err (callbacks run). */
void drv_qpair_fail_all(struct nvemu_drv_qpair *qp, int err);
/* Put qp's fd on the caller's loop / take it off / follow get_events(). */
int drv_qpair_watch(struct nvemu_drv_qpair *qp);
void drv_qpair_unwatch(struct nvemu_drv_qpair *qp);
void drv_qpair_update_events(struct nvemu_drv_qpair *qp);
struct nvemu_drv_qpair *drv_qpair_alloc(struct nvemu_drv_ctrl *ctrl, uint16_t qid, uint16_t size);
void drv_qpair_free(struct nvemu_drv_qpair *qp);

/* ---- ctrl.c */
/* Leave ENABLED: drop the transport's queues, fail what is in flight, reconnect later. */
void drv_ctrl_lost(struct nvemu_drv_ctrl *ctrl, const char *why);

/* ---- ns.c */
/* Read the active namespace list and each namespace (events for changes). */
int drv_ns_scan(struct nvemu_drv_ctrl *ctrl, bool notify);
const struct drv_ns *drv_ns_find(const struct nvemu_drv_ctrl *ctrl, uint32_t nsid);

/* ---- transports.c: the table of transports linked in (add a line per transport) */
extern const struct nvemu_drv_transport_ops drv_tcp_ops;	 /* tcp.c */
extern const struct nvemu_drv_transport_ops drv_pcie_ops;	 /* pcie.c over vfio-pci */
extern const struct nvemu_drv_transport_ops drv_vfio_user_ops; /* pcie.c over vfio-user */
/* NULL: not linked. */
const struct nvemu_drv_transport_ops *drv_transport_find(enum nvemu_drv_trtype t);

#endif
