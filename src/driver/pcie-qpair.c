// SPDX-License-Identifier: MIT
/*
 * Queue pairs of the NVMe-over-PCIe host transport: SQ and CQ rings and a
 * bounce buffer per command slot in memory the device can reach, data
 * pointers (PRP1/PRP2 and PRP lists; SGL Data Block or Last Segment lists
 * on I/O queues when the controller takes SGLs), doorbells and completions.
 *
 * The device writes the CQ ring whenever it likes: each entry is copied
 * once (status word last, with acquire order) and only the copy is
 * checked and used. A CQE that names another queue, an SQ head outside
 * what was submitted, or a command not in flight makes process() fail
 * with -EPROTO, and the core resets the controller.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "pcie-host.h"

#define PSDT_SGL     0x40u /* SQE flags: SGL for data, MPTR an address */
#define SGL_DATA     0x00u /* descriptor type byte: Data Block */
#define SGL_LAST_SEG 0x30u /* Last Segment */

struct sgl_desc {
	uint64_t addr;
	uint32_t len;
	uint8_t rsvd[3];
	uint8_t type;
};
_Static_assert(sizeof(struct sgl_desc) == 16, "SGL descriptor is 16 bytes");

static uint8_t *slot_buf(struct pcie_queue *q, uint16_t cid)
{
	return (uint8_t *)q->data.vaddr + (size_t)cid * q->slot_bytes;
}

static uint64_t slot_iova(struct pcie_queue *q, uint16_t cid)
{
	return q->data.iova + (uint64_t)cid * q->slot_bytes;
}

/*
 * A queue on a shared vector waits on an epoll fd of its own that watches
 * the vector's eventfd edge-triggered: every signal makes each queue's fd
 * readable until that queue's process() consumes it, whichever queue reads
 * the counter, so no queue misses a wakeup meant for it.
 */
static int shared_fd(int vec_fd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd >= 0 && epoll_ctl(fd, EPOLL_CTL_ADD, vec_fd, &ev)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Where a queue's interrupts come from, decided by the vectors pcie.c set up. */
static void queue_vector(struct pcie_ctrl *pc, struct pcie_queue *q)
{
	struct pcie_vec *v;

	q->efd = -1;
	q->own_vector = false;
	q->vector = 0;
	if (!pc->nvec)
		return;
	if (pc->irq == NVEMU_PCI_IRQ_MSIX && q->qid < pc->nvec)
		q->vector = q->qid;
	v = &pc->vec[q->vector];
	v->users++;
	q->own_vector = !v->shared;
	if (v->shared)
		q->efd = shared_fd(v->fd);
}

static int queue_slot(struct pcie_ctrl *pc, struct pcie_queue *q)
{
	if (q->qid >= pc->nr_queues) {
		unsigned n = q->qid + 1u;
		struct pcie_queue **a = realloc(pc->queues, n * sizeof(*a));

		if (!a)
			return -ENOMEM;
		memset(a + pc->nr_queues, 0, (n - pc->nr_queues) * sizeof(*a));
		pc->queues = a;
		pc->nr_queues = n;
	}
	pc->queues[q->qid] = q;
	return 0;
}

int pcie_queue_alloc(struct pcie_ctrl *pc, struct nvemu_drv_qpair *qp, struct nvemu_error *err)
{
	struct pcie_queue *q = calloc(1, sizeof(*q));
	int r;

	if (!q)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	q->pc = pc;
	q->qp = qp;
	q->qid = qp->qid;
	q->size = qp->size;
	q->phase = true;
	q->slot_bytes = PCIE_MAX_XFER + PCIE_PAGE; /* data, then its PRP or SGL list */
	q->sq.fd = q->cq.fd = q->data.fd = -1;
	r = nvemu_pci_dma_alloc(pc->dev, (size_t)q->size * 64, &q->sq, err);
	if (!r)
		r = nvemu_pci_dma_alloc(pc->dev, (size_t)q->size * 16, &q->cq, err);
	if (!r)
		r = nvemu_pci_dma_alloc(pc->dev, (size_t)qp->depth * q->slot_bytes, &q->data, err);
	if (!r && (r = queue_slot(pc, q)))
		nvemu_error_set(err, r, "out of memory");
	if (r) {
		nvemu_pci_dma_free(pc->dev, &q->data);
		nvemu_pci_dma_free(pc->dev, &q->cq);
		nvemu_pci_dma_free(pc->dev, &q->sq);
		free(q);
		return r;
	}
	queue_vector(pc, q);
	qp->tr = q;
	return 0;
}

void pcie_queue_free(struct pcie_ctrl *pc, struct nvemu_drv_qpair *qp)
{
	struct pcie_queue *q = qp->tr;

	if (!q)
		return;
	qp->tr = NULL;
	qp->connected = false;
	if (q->qid < pc->nr_queues && pc->queues[q->qid] == q)
		pc->queues[q->qid] = NULL;
	if (pc->nvec && pc->vec[q->vector].users)
		pc->vec[q->vector].users--;
	if (q->efd >= 0)
		close(q->efd);
	nvemu_pci_dma_free(pc->dev, &q->data);
	nvemu_pci_dma_free(pc->dev, &q->cq);
	nvemu_pci_dma_free(pc->dev, &q->sq);
	free(q);
}

/* PRP1 the buffer, PRP2 its second page or a list of the pages after the first. */
static void map_prp(struct pcie_queue *q, struct nvemu_sqe *sqe, uint16_t cid, uint32_t len)
{
	uint64_t iova = slot_iova(q, cid);
	uint32_t pages = (len + PCIE_PAGE - 1) / PCIE_PAGE;
	uint64_t *list = (uint64_t *)(slot_buf(q, cid) + PCIE_MAX_XFER);

	sqe->flags &= (uint8_t)~0xc0u;
	sqe->dptr1 = iova;
	sqe->dptr2 = 0;
	if (pages == 2) {
		sqe->dptr2 = iova + PCIE_PAGE;
	} else if (pages > 2) {
		for (uint32_t i = 1; i < pages; i++)
			list[i - 1] = iova + (uint64_t)i * PCIE_PAGE;
		sqe->dptr2 = iova + PCIE_MAX_XFER;
	}
}

/* One Data Block, or a Last Segment of one Data Block per page. */
static void map_sgl(struct pcie_queue *q, struct nvemu_sqe *sqe, uint16_t cid, uint32_t len)
{
	uint64_t iova = slot_iova(q, cid);
	struct sgl_desc *list = (struct sgl_desc *)(slot_buf(q, cid) + PCIE_MAX_XFER);
	struct sgl_desc d = {.addr = iova, .len = len, .type = SGL_DATA};
	uint32_t n = 0;

	sqe->flags = (uint8_t)((sqe->flags & ~0xc0u) | PSDT_SGL);
	if (len > PCIE_PAGE) {
		for (uint32_t off = 0; off < len; off += PCIE_PAGE, n++) {
			list[n] = (struct sgl_desc){.addr = iova + off, .type = SGL_DATA};
			list[n].len = len - off < PCIE_PAGE ? len - off : PCIE_PAGE;
		}
		d = (struct sgl_desc){.addr = iova + PCIE_MAX_XFER,
				      .len = n * (uint32_t)sizeof(d),
				      .type = SGL_LAST_SEG};
	}
	memcpy(&sqe->dptr1, &d, sizeof(d));
}

int pcie_submit(struct nvemu_drv_qpair *qp, struct drv_req *req)
{
	struct pcie_queue *q = qp->tr;
	struct nvemu_sqe sqe;
	int r;

	if (!q)
		return -ENOTCONN;
	if (req->cid >= qp->depth || req->len > PCIE_MAX_XFER || (req->len && !req->buf))
		return -EINVAL;
	sqe = req->cmd;
	sqe.cid = req->cid;
	if (req->len) {
		if (req->dir & NVEMU_XFER_TO_CTRL)
			memcpy(slot_buf(q, req->cid), req->buf, req->len);
		if (q->pc->sgl && q->qid)
			map_sgl(q, &sqe, req->cid, req->len);
		else
			map_prp(q, &sqe, req->cid, req->len);
	} /* else the caller's PRP1 stands: Create I/O CQ/SQ point at a ring */
	memcpy((uint8_t *)q->sq.vaddr + (size_t)q->sq_tail * 64, &sqe, sizeof(sqe));
	q->sq_tail = (uint16_t)((q->sq_tail + 1) % q->size);
	r = pcie_write_db(q->pc, q->qid, false, q->sq_tail);
	if (r) { /* the device (or its server) is gone: the core resets at its next tick */
		drv_qpair_lost(qp, "SQ doorbell write failed");
		return -ENOTCONN;
	}
	return 0;
}

int pcie_cq_peek(struct pcie_queue *q, struct nvemu_cqe *cqe)
{
	uint32_t *e = (uint32_t *)((uint8_t *)q->cq.vaddr + (size_t)q->cq_head * 16);
	uint32_t dw3 = __atomic_load_n(&e[3], __ATOMIC_ACQUIRE);
	uint32_t dw2;

	if (!!(dw3 & (1u << 16)) != q->phase)
		return -EAGAIN;
	cqe->dw0 = __atomic_load_n(&e[0], __ATOMIC_RELAXED);
	cqe->dw1 = __atomic_load_n(&e[1], __ATOMIC_RELAXED);
	dw2 = __atomic_load_n(&e[2], __ATOMIC_RELAXED);
	cqe->sqhd = (uint16_t)dw2;
	cqe->sqid = (uint16_t)(dw2 >> 16);
	cqe->cid = (uint16_t)dw3;
	cqe->status = (uint16_t)(dw3 >> 17);
	return 0;
}

int pcie_cqe_check(struct pcie_queue *q, const struct nvemu_cqe *cqe)
{
	/* the device's head moves from ours toward the tail, never past it */
	uint32_t fetched = (uint32_t)(cqe->sqhd + q->size - q->sq_head) % q->size;
	uint32_t posted = (uint32_t)(q->sq_tail + q->size - q->sq_head) % q->size;

	if (cqe->sqid != q->qid)
		return -EPROTO;
	if (cqe->sqhd >= q->size || fetched > posted)
		return -EPROTO;
	return 0;
}

static int cq_error(struct pcie_queue *q, const struct nvemu_cqe *cqe, const char *why)
{
	q->pc->errors++;
	drv_log(q->pc->ctrl, NVEMU_DRV_LOG_ERR,
		"%s: queue %u: completion (cid %u sqid %u sqhd %u) %s: resetting the controller",
		q->pc->dev->addr, q->qid, cqe->cid, cqe->sqid, cqe->sqhd, why);
	return -EPROTO;
}

/* Take the queue's wakeup before looking at the ring, so a later signal wakes it again. */
static void drain(struct pcie_queue *q)
{
	struct pcie_ctrl *pc = q->pc;
	struct epoll_event ev;
	uint64_t v;

	if (!pc->nvec)
		return;
	if (q->efd >= 0)
		epoll_wait(q->efd, &ev, 1, 0);
	/* INTx is masked by each delivery: unmask once the CQs are looked at */
	if (read(pc->vec[q->vector].fd, &v, sizeof(v)) == sizeof(v) && v &&
	    pc->irq == NVEMU_PCI_IRQ_INTX)
		pc->intx_masked = true;
}

/* Mapped doorbells fail no write when the device goes: ask it now and then. */
#define PCIE_ALIVE_NS (10ull * 1000 * 1000)

static bool pcie_dev_gone(struct pcie_ctrl *pc)
{
	uint64_t now;

	if (!pc->dev->ops->alive)
		return false;
	now = drv_now_ns();
	if (now - pc->alive_ns < PCIE_ALIVE_NS)
		return false;
	pc->alive_ns = now;
	return pc->dev->ops->alive(pc->dev) != 0;
}

int pcie_process(struct nvemu_drv_qpair *qp, unsigned max)
{
	struct pcie_queue *q = qp->tr;
	struct nvemu_cqe cqe;
	unsigned n = 0, limit;

	if (!q)
		return -ENOTCONN;
	if (q->pc->dev->broken || pcie_dev_gone(q->pc))
		return -ENODEV;
	drain(q);
	limit = max && max < q->size ? max : q->size;
	while (n < limit && !pcie_cq_peek(q, &cqe)) {
		struct drv_req *req;

		if (pcie_cqe_check(q, &cqe))
			return cq_error(q, &cqe,
					cqe.sqid != q->qid ? "names another queue"
							   : "moves the SQ head out of range");
		req = drv_req_lookup(qp, cqe.cid);
		if (!req || req->cid >= qp->depth)
			return cq_error(q, &cqe, "is for no command in flight");
		if (req->len && (req->dir & NVEMU_XFER_FROM_CTRL))
			memcpy(req->buf, slot_buf(q, req->cid), req->len);
		q->sq_head = cqe.sqhd;
		if (++q->cq_head == q->size) {
			q->cq_head = 0;
			q->phase = !q->phase;
		}
		n++;
		if (drv_complete(qp, &cqe))
			return cq_error(q, &cqe, "was refused by the core");
		if (qp->tr != q) /* the callback reset the controller */
			return (int)n;
	}
	if (n && pcie_write_db(q->pc, q->qid, true, q->cq_head))
		return -ENOTCONN;
	pcie_irq_done(q->pc);
	return (int)n;
}

int pcie_get_fd(struct nvemu_drv_qpair *qp)
{
	struct pcie_queue *q = qp->tr;

	if (!q || !q->pc->nvec)
		return -1;
	return q->own_vector ? q->pc->vec[q->vector].fd : q->efd;
}
