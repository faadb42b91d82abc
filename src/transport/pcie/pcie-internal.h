/* SPDX-License-Identifier: MIT */
/* State shared by the PCIe controller's files (see include/nvemu/pcie.h). */
#ifndef NVEMU_PCIE_INTERNAL_H
#define NVEMU_PCIE_INTERNAL_H

#include <stddef.h>
#include <sys/queue.h>

#include "engine/nvemu-internal.h"
#include <nvemu/pcie.h>

#define PCIE_SQE_SIZE 64u
#define PCIE_CQE_SIZE 16u
/* SGL descriptors walked per command, beyond which Invalid Number of SGL Descriptors */
#define PCIE_SGL_MAX_DESC 4096u
/* Bounded wait for in-flight commands on queue deletion / controller reset */
#define PCIE_DRAIN_NS (2ull * 1000 * 1000 * 1000)

#define pcie_container_of(ptr, type, member)                                                       \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct pcie_sq;
struct pcie_cq;

/* One piece of the host buffer; bucket: read data the host discards. */
struct pcie_seg {
	uint64_t addr;
	uint32_t len;
	bool bucket;
};

struct pcie_req {
	struct nvemu_req req;
	struct pcie_sq *sq;
	STAILQ_ENTRY(pcie_req) link; /* the SQ's free list, or the CQ's backlog */
	void *bounce;
	uint32_t bounce_cap;
	struct pcie_seg *segs;
	unsigned nsegs, segs_cap;
	uint32_t len;	/* bytes the command transfers */
	bool in_engine; /* submitted, done() not called yet */
	bool scatter;	/* copy the bounce buffer to the host on success */
};

STAILQ_HEAD(pcie_req_list, pcie_req);

/*
 * The transport's side of an SQ. The queue itself (qid, cqid, size, base
 * address, head, tail) is the engine's struct nvemu_sq; this keeps what
 * only a memory-based transport has: the mapped ring and a request per entry.
 */
struct pcie_sq {
	struct nvemu_pcie_ctrl *pc;
	struct nvemu_sq *q; /* ctrl->sqs[qid], or retired once deleted */
	/*
	 * The queue's last state once it is deleted: the engine may give the
	 * qid to a new queue while commands of this one are still in a backend.
	 */
	struct nvemu_sq retired;
	uint8_t *ring;	       /* mapped ring, or NULL: DMA */
	struct pcie_req *reqs; /* the pool, one per entry */
	uint16_t nr_reqs;
	struct pcie_req_list free;
	unsigned outstanding; /* fetched, not yet released */
	unsigned in_engine;
	struct pcie_cq *cq; /* NULL once the CQ is gone */
	bool zombie;	    /* deleted; freed when outstanding drops to 0 */
	bool orphan;	    /* controller reset: drop its completions */
	LIST_ENTRY(pcie_sq) zombie_link;
};

/* The transport's side of a CQ; the queue is the engine's struct nvemu_cq. */
struct pcie_cq {
	struct nvemu_cq *q; /* ctrl->cqs[qid] */
	uint8_t *ring;
	bool phase;
	struct pcie_req_list backlog; /* completions waiting for space */
	unsigned nr_backlog;
};

struct pcie_vec {
	uint32_t pending;     /* CQEs posted since the last interrupt (coalescing) */
	uint64_t deadline_ns; /* coalescing time limit; 0: none armed */
	uint64_t count;	      /* interrupts signalled */
};

struct nvemu_pcie_ctrl {
	struct nvemu_ctrl *ctrl;
	const struct nvemu_pci_host_ops *ops;
	void *ctx;

	uint8_t cfg[NVEMU_PCIE_CFG_SIZE];
	uint8_t wmask[NVEMU_PCIE_CFG_SIZE];

	/* MSI-X */
	unsigned nvec;
	uint8_t *msix_table; /* 16 bytes per vector, little-endian */
	unsigned nr_armed;   /* vectors with a coalescing deadline */
	uint64_t *pba;
	bool msix_ext, msix_ext_en;
	uint64_t *ext_mask;
	struct pcie_vec *vec;
	bool intx;

	/* queues, index = qid */
	unsigned nq;
	struct pcie_sq **sqs;
	struct pcie_cq **cqs;
	LIST_HEAD(, pcie_sq) zombies;
	uint32_t page_size; /* CC.MPS at enable */

	bool nssro;
	bool paused; /* no SQ is fetched from (live update): doorbells are only recorded */
	bool resetting;
	bool destroyed; /* freed when the last zombie SQ goes */
	bool in_arb, arb_again;
	uint64_t db_errors;

	/* doorbells in memory (pcie-doorbell.c), index = 2 * qid + (CQ head) */
	uint32_t *db_shm;      /* BAR0 doorbells shared with the host, NULL: registers only */
	uint32_t *db_seen;     /* last value taken from db_shm */
	uint32_t *shadow;      /* Doorbell Buffer Config, mapped; NULL: off */
	uint32_t *eventidx;
	uint32_t shadow_ndb;   /* doorbells the shadow page covers */
	uint32_t *shadow_seen; /* last value taken from shadow */
	struct nvemu_pcie_db_stats dbst;
};

/* pci-cfg.c */
void pcie_cfg_init(struct nvemu_pcie_ctrl *pc);
uint16_t pcie_cfg_command(const struct nvemu_pcie_ctrl *pc);
uint16_t pcie_cfg_msix_mc(const struct nvemu_pcie_ctrl *pc);

/* pcie-irq.c */
int pcie_irq_init(struct nvemu_pcie_ctrl *pc);
void pcie_irq_free(struct nvemu_pcie_ctrl *pc);
void pcie_irq_reset(struct nvemu_pcie_ctrl *pc, bool flr);
uint64_t pcie_msix_read(struct nvemu_pcie_ctrl *pc, uint64_t off, unsigned size);
void pcie_msix_write(struct nvemu_pcie_ctrl *pc, uint64_t off, unsigned size, uint64_t val);
/* A CQE was posted to cq: interrupt now, or count it for coalescing. */
void pcie_irq_cq_posted(struct nvemu_pcie_ctrl *pc, struct pcie_cq *cq);
/* MSI-X enable / function mask / INTx disable / INTMS changed. */
void pcie_irq_update(struct nvemu_pcie_ctrl *pc);
void pcie_irq_drop_vector(struct nvemu_pcie_ctrl *pc, uint16_t iv);
/* Signal every vector holding coalesced interrupts now. */
void pcie_irq_flush(struct nvemu_pcie_ctrl *pc);
int pcie_irq_poll(struct nvemu_pcie_ctrl *pc);
uint64_t pcie_irq_next_us(struct nvemu_pcie_ctrl *pc);

/* pcie-queue.c */
extern const struct nvemu_transport_ops pcie_transport_ops;
uint16_t pcie_admin_queues_create(struct nvemu_pcie_ctrl *pc);
void pcie_queues_teardown(struct nvemu_pcie_ctrl *pc);
void pcie_doorbell(struct nvemu_pcie_ctrl *pc, uint32_t db, uint32_t val);
void pcie_arbitrate(struct nvemu_pcie_ctrl *pc);
int pcie_queue_poll(struct nvemu_pcie_ctrl *pc);
void pcie_drain(struct nvemu_pcie_ctrl *pc, struct pcie_sq *sq);
/* pcie-state.c: the transport side of every queue the engine has (restored state); phase per CQ. */
int pcie_queues_restore(struct nvemu_pcie_ctrl *pc, const uint8_t *cq_phase);
/* An outstanding AER the host submitted with cid, submitted again (restored state). */
int pcie_aer_resubmit(struct nvemu_pcie_ctrl *pc, uint16_t cid);
/* The CIDs of the outstanding AERs into cids (room for max); returns how many, -1 if busy otherwise. */
int pcie_aer_cids(struct nvemu_pcie_ctrl *pc, uint16_t *cids, unsigned max);
bool pcie_cq_phase(const struct nvemu_pcie_ctrl *pc, unsigned qid);
bool pcie_cq_backlogged(const struct nvemu_pcie_ctrl *pc);

/* pcie-doorbell.c */
int pcie_db_init(struct nvemu_pcie_ctrl *pc);
void pcie_db_free(struct nvemu_pcie_ctrl *pc);
void pcie_db_reset(struct nvemu_pcie_ctrl *pc);
void pcie_db_queue_created(struct nvemu_pcie_ctrl *pc, uint32_t db);
/* A doorbell register write (a message, not the shared page). */
void pcie_db_msg_write(struct nvemu_pcie_ctrl *pc, uint32_t db, uint32_t val);
uint16_t pcie_dbbuf_config(struct nvemu_ctrl *ctrl, uint64_t dbs, uint64_t eis);

/* pcie-dptr.c */
/* Describe, allocate and (for host-to-controller data) gather len bytes. */
uint16_t pcie_dptr_setup(struct nvemu_pcie_ctrl *pc, struct pcie_req *r, uint32_t len);
/* Copy controller-to-host data out; 0 or an NVMe status. */
uint16_t pcie_dptr_scatter(struct nvemu_pcie_ctrl *pc, struct pcie_req *r);
void pcie_dptr_release(struct pcie_req *r);
void pcie_dptr_free(struct pcie_req *r);

/* pcie-regs.c */
/* The controller hit a fatal condition (e.g. failed DMA of a queue entry). */
void pcie_fatal(struct nvemu_pcie_ctrl *pc);
bool pcie_ready(const struct nvemu_pcie_ctrl *pc);
/* The ops table's enable_ok(): admin queue registers and entry sizes. */
bool pcie_enable_ok(const struct nvemu_ctrl *ctrl, uint32_t cc);
void pcie_free(struct nvemu_pcie_ctrl *pc);

#endif
