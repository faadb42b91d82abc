/* SPDX-License-Identifier: MIT */
/*
 * The request that flows from a transport through the engine to a backend
 * and back. A transport fills cmd, sqid, the data buffer and done(), calls
 * nvemu_ctrl_submit(), and gets done() called exactly once with cqe filled.
 */
#ifndef NVEMU_REQUEST_H
#define NVEMU_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <nvemu/bdev.h>
#include <nvemu/model.h>
#include <nvemu/spec.h>

struct nvemu_req;

struct nvemu_req {
	/* Filled by the transport. */
	struct nvemu_sqe cmd;
	uint16_t sqid; /* 0: admin queue */
	/*
	 * Out-of-band (NVMe-MI admin tunnel): runs on the admin path whether
	 * or not a host has enabled the controller. A suspended controller
	 * answers it at once with Command Interrupted (no DNR: retry later)
	 * instead of holding it, since a management controller waits for
	 * every reply.
	 */
	bool oob;
	void *buf;	  /* data: host data for writes, filled for reads */
	uint32_t buf_len; /* bytes the host described (PRP/SGL/capsule) */
	void (*done)(struct nvemu_req *req);
	void *transport_priv;

	/* Filled by the engine before done(). */
	struct nvemu_cqe cqe;
	uint32_t xfer_len; /* bytes of buf the command produced or consumed */

	/* Engine-private. */
	struct nvemu_ctrl *ctrl;
	struct nvemu_ns *ns;
	STAILQ_ENTRY(nvemu_req) queue_link; /* the outstanding AERs, or the held commands */
	LIST_ENTRY(nvemu_req) inflight_link; /* the controller's commands in flight */
	/* Set when the command was aborted (Abort, SQ deletion, suspend timeout):
	 * it completes with this status once its backend I/O ends. */
	uint16_t abort_status;
	struct nvemu_bio bio;
	int bio_pending; /* sub-I/Os outstanding (Copy, Flush-all, Format) */
	int bio_err;	 /* first error of those */
	void *cmd_priv;	 /* per-command scratch (bounce buffers) */
	/* Called with cmd_priv before it is freed: drops what it holds (namespace references). */
	void (*cmd_priv_release)(struct nvemu_req *req);
	uint64_t start_ns;
	bool fwd; /* held by the admin forwarder (nvemu_ctrl_set_admin_fwd) */
};

/* The transport a controller is currently reached through. */
struct nvemu_transport_ops {
	const char *name; /* "loop", "tcp", "pcie" */
	/*
	 * Fabrics transports have no I/O queue commands (Create/Delete I/O
	 * SQ/CQ are Invalid Opcode) and use Connect/Property Get/Set.
	 */
	bool fabrics;
	/*
	 * Queue management for memory-based transports: the engine validates
	 * the command, then calls these to map or unmap the queue.
	 * Return an NVMe status (0 on success).
	 */
	uint16_t (*create_cq)(struct nvemu_ctrl *ctrl, uint16_t qid, uint64_t addr, uint16_t size,
			      uint16_t iv, bool ien, bool pc);
	uint16_t (*create_sq)(struct nvemu_ctrl *ctrl, uint16_t qid, uint64_t addr, uint16_t size,
			      uint16_t cqid, uint8_t prio, bool pc);
	uint16_t (*delete_cq)(struct nvemu_ctrl *ctrl, uint16_t qid);
	uint16_t (*delete_sq)(struct nvemu_ctrl *ctrl, uint16_t qid);
	/* Controller reset (CC.EN 1->0) or shutdown: drop transport queues. */
	void (*reset)(struct nvemu_ctrl *ctrl);
	/*
	 * Keep alive has one owner, the engine: it keeps KATO (Connect, Set
	 * Features) and the time of the host's last sign of life. A transport
	 * with a timer calls nvemu_ctrl_check_keep_alive() from it, and the
	 * engine calls this once the timeout passed: the transport tears the
	 * association down. NULL: nothing to tear down (memory-based transports).
	 */
	void (*kato_expired)(struct nvemu_ctrl *ctrl);
	/*
	 * Identify Controller fields the transport imposes (SGLS, IOCCSZ,
	 * IORCSZ, ...). The engine calls it at the end of
	 * nvemu_fill_id_ctrl(), so in-band hosts and the NVMe-MI admin tunnel
	 * read the same data. NULL: the engine's values stand.
	 */
	void (*id_ctrl)(const struct nvemu_ctrl *ctrl, struct nvme_id_ctrl *id);
	/*
	 * The Keep Alive Timeout changed (Set Features KATO), in milliseconds;
	 * 0 disables it. For a transport whose keep-alive timer has to be
	 * re-armed; one that polls nvemu_ctrl_check_keep_alive() needs none.
	 */
	void (*set_kato)(struct nvemu_ctrl *ctrl, uint32_t kato_ms);
	/*
	 * Transport limits the engine applies. enable_ok: what only the
	 * transport can check before CC.EN takes effect (its admin queue
	 * registers); false fails the enable with CSTS.CFS. NULL: no limit.
	 */
	bool (*enable_ok)(const struct nvemu_ctrl *ctrl, uint32_t cc);
	/* Identify SGLS: the SGL support the transport offers (0: PRPs only). */
	uint32_t sgls;
	/*
	 * Doorbell Buffer Config (shadow doorbells + EventIdx, for I/O
	 * queues): dbs and eis are the buffers' page-aligned addresses the
	 * engine checked. Returns an NVMe status. NULL (fabrics: no
	 * doorbells): the opcode is Invalid Opcode.
	 */
	uint16_t (*dbbuf_config)(struct nvemu_ctrl *ctrl, uint64_t dbs, uint64_t eis);
};

/* Bind a transport to the controller (one at a time); NULL unbinds. */
int nvemu_ctrl_bind_transport(struct nvemu_ctrl *ctrl, const struct nvemu_transport_ops *ops,
			      void *priv, struct nvemu_error *err);
void *nvemu_ctrl_transport_priv(struct nvemu_ctrl *ctrl);

/*
 * Start a command. done() may run before this returns. Before CC.EN=1 every
 * in-band command fails with Command Sequence Error.
 */
void nvemu_ctrl_submit(struct nvemu_ctrl *ctrl, struct nvemu_req *req);

/*
 * Bytes of data the command transfers (0 for none), from its opcode and
 * dwords, as the controller's namespaces are formatted now; -1 when the
 * command is malformed. Transports use it to size bounce buffers.
 */
int64_t nvemu_req_expected_len(struct nvemu_ctrl *ctrl, uint16_t sqid, const struct nvemu_sqe *cmd);

/* ---- admin command forwarding: an owner may answer Identify / Set Features itself */

struct nvemu_admin_fwd_ops {
	/* Whether the owner wants this admin command (called for Identify and Set Features only). */
	bool (*wants)(void *priv, const struct nvemu_sqe *cmd);
	/*
	 * Take the command. local: for Identify, the engine's own answer (4096
	 * bytes) with local_status; NULL for Set Features. Returns false to
	 * decline (the engine answers at once). A taken command stays in
	 * flight until the owner ends it with nvemu_req_fwd_complete(),
	 * nvemu_req_fwd_fallback() or nvemu_req_fwd_abort().
	 */
	bool (*forward)(void *priv, struct nvemu_req *req, const void *local, uint16_t local_status);
	/*
	 * The command was aborted (Abort, suspend timeout, controller reset):
	 * the owner ends it soon with nvemu_req_fwd_abort(), from its own
	 * loop, not from inside this call.
	 */
	void (*cancel)(void *priv, struct nvemu_req *req);
};

/* ops NULL unbinds; the owner must have ended every command it holds. */
void nvemu_ctrl_set_admin_fwd(struct nvemu_ctrl *ctrl, const struct nvemu_admin_fwd_ops *ops,
			      void *priv);
/*
 * The owner's answer: status (libnvme encoding), DW0/DW1 and, for
 * Identify, data (len bytes, at most the command's transfer length).
 */
void nvemu_req_fwd_complete(struct nvemu_req *req, uint16_t status, uint32_t dw0, uint32_t dw1,
			    const void *data, uint32_t len);
/* The owner did not answer: the engine answers as it would have without forwarding. */
void nvemu_req_fwd_fallback(struct nvemu_req *req);
/* End a cancelled command: Command Aborted (or the status its abort set). */
void nvemu_req_fwd_abort(struct nvemu_req *req);

/* ---- controller registers / fabrics properties */

#define NVEMU_REG_CAP	0x00
#define NVEMU_REG_VS	0x08
#define NVEMU_REG_INTMS 0x0c
#define NVEMU_REG_INTMC 0x10
#define NVEMU_REG_CC	0x14
#define NVEMU_REG_CSTS	0x1c
#define NVEMU_REG_NSSR	0x20
#define NVEMU_REG_AQA	0x24
#define NVEMU_REG_ASQ	0x28
#define NVEMU_REG_ACQ	0x30

uint64_t nvemu_ctrl_get_cap(struct nvemu_ctrl *ctrl);
uint32_t nvemu_ctrl_get_vs(struct nvemu_ctrl *ctrl);
uint32_t nvemu_ctrl_get_cc(struct nvemu_ctrl *ctrl);
uint32_t nvemu_ctrl_get_csts(struct nvemu_ctrl *ctrl);
/*
 * Writes CC: EN 0->1 enables (CSTS.RDY), 1->0 resets the controller, SHN
 * runs a shutdown (flushing backends) and reports CSTS.SHST. Invalid values
 * (unsupported IOSQES/IOCQES/MPS/CSS) set CSTS.CFS.
 */
void nvemu_ctrl_set_cc(struct nvemu_ctrl *ctrl, uint32_t cc);

/* ---- suspend/resume: quiesce a controller (snapshot, teardown) without losing commands */

/*
 * Stop taking new commands; they are held until resume (out-of-band ones
 * are answered with Command Interrupted). In-flight ones complete. Returns
 * the number of commands still in flight.
 */
unsigned nvemu_ctrl_suspend(struct nvemu_ctrl *ctrl, bool admin_only);
/*
 * Fail in-flight commands (Command Abort Requested) after a suspend
 * timeout: each completes with that status when its backend I/O ends.
 */
void nvemu_ctrl_abort_inflight(struct nvemu_ctrl *ctrl);
void nvemu_ctrl_resume(struct nvemu_ctrl *ctrl);
bool nvemu_ctrl_is_suspended(const struct nvemu_ctrl *ctrl);
/*
 * Call fn(arg) once no command is in flight on ctrl (outstanding AERs do
 * not count): at once when idle, else after the last one completed. One
 * waiter at a time; a later call replaces it, fn NULL cancels. Teardown
 * (controller, namespace and subsystem destroy) waits through this instead
 * of spinning the event loop; fn may free the controller.
 */
void nvemu_ctrl_when_idle(struct nvemu_ctrl *ctrl, void (*fn)(void *arg), void *arg);
/* Commands in flight (outstanding AERs and held commands excluded, shutdown flushes included). */
unsigned nvemu_ctrl_inflight(const struct nvemu_ctrl *ctrl);

/* ---- driving backends */

/* Reap backend completions of every namespace of the subsystem. */
int nvemu_subsys_poll(struct nvemu_subsys *subsys);

#endif
