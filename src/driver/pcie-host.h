/* SPDX-License-Identifier: MIT */
/*
 * The NVMe-over-PCIe host transport's state (pcie.c: controller,
 * registers, interrupts; pcie-qpair.c: rings, data pointers, completions).
 */
#ifndef NVEMU_DRIVER_PCIE_HOST_H
#define NVEMU_DRIVER_PCIE_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "driver/driver-internal.h"
#include "pci-dev.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "queue entries are written in host order: little-endian hosts only");

#define PCIE_PAGE      4096u
#define PCIE_MAX_XFER  (128u * 1024) /* bounce buffer per command slot */
#define PCIE_REG_CAP   0x00
#define PCIE_REG_VS    0x08
#define PCIE_REG_INTMS 0x0c
#define PCIE_REG_INTMC 0x10
#define PCIE_REG_CC    0x14
#define PCIE_REG_CSTS  0x1c
#define PCIE_REG_AQA   0x24
#define PCIE_REG_ASQ   0x28
#define PCIE_REG_ACQ   0x30
#define PCIE_DB_BASE   0x1000

struct pcie_queue;

/* One interrupt vector the device signals on an eventfd. */
struct pcie_vec {
	int fd;
	bool shared;	/* several queues: each watches it edge-triggered in its own epoll fd */
	unsigned users; /* queues on it */
};

struct pcie_ctrl {
	struct nvemu_drv_ctrl *ctrl;
	struct nvemu_pci_dev *dev;
	uint64_t cap;
	uint32_t db_stride; /* bytes: 4 << CAP.DSTRD */
	enum nvemu_pci_irq irq;
	struct pcie_vec *vec;
	unsigned nvec;
	bool intx_masked;	    /* INTx was delivered (and so masked) and is not unmasked yet */
	bool sgl;		    /* the controller takes SGLs for I/O and nosgl is off */
	struct pcie_queue **queues; /* by qid, for sharing a vector */
	unsigned nr_queues;
	uint64_t errors; /* completions refused */
	uint64_t alive_ns; /* when the device was last asked whether it is there */
};

struct pcie_queue {
	struct pcie_ctrl *pc;
	struct nvemu_drv_qpair *qp;
	uint16_t qid, size;
	struct nvemu_pci_dma sq, cq, data;
	uint32_t slot_bytes; /* data + list page of one command slot */
	uint16_t sq_tail, sq_head, cq_head;
	bool phase;
	uint16_t vector;
	bool own_vector; /* the vector's eventfd is the queue's fd */
	int efd;	 /* shared vector: an epoll fd watching it, the queue's fd */
};

static inline struct pcie_ctrl *pcie_ctrl_of(struct nvemu_drv_ctrl *ctrl)
{
	return ctrl->tr;
}

/* pcie.c */
int pcie_write_db(struct pcie_ctrl *pc, uint16_t qid, bool cq, uint16_t val);
void pcie_irq_done(struct pcie_ctrl *pc);

/* pcie-qpair.c */
int pcie_queue_alloc(struct pcie_ctrl *pc, struct nvemu_drv_qpair *qp, struct nvemu_error *err);
void pcie_queue_free(struct pcie_ctrl *pc, struct nvemu_drv_qpair *qp);
int pcie_submit(struct nvemu_drv_qpair *qp, struct drv_req *req);
int pcie_process(struct nvemu_drv_qpair *qp, unsigned max);
int pcie_get_fd(struct nvemu_drv_qpair *qp);
/* The CQE at the head, if new; 0 or -EAGAIN. The device writes the ring at any time. */
int pcie_cq_peek(struct pcie_queue *q, struct nvemu_cqe *cqe);
/* Check a CQE's queue fields before the core sees it; 0 or -EPROTO. */
int pcie_cqe_check(struct pcie_queue *q, const struct nvemu_cqe *cqe);

#endif
