// SPDX-License-Identifier: MIT
/*
 * NVMe over PCIe, host side: the core's struct nvemu_drv_transport_ops over
 * a struct nvemu_pci_dev (vfio-user socket or VFIO). Registers through
 * BAR0, doorbells at 0x1000 with CAP.DSTRD, admin queue programmed in
 * AQA/ASQ/ACQ, I/O queues made with Create I/O CQ/SQ; interrupts from
 * MSI-X (a vector per queue where the device has enough), MSI or INTx
 * (one vector the queues share), or none (polling).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pcie-host.h"

#define PCI_COMMAND	 0x04
#define PCI_CMD_MEM	 (1u << 1)
#define PCI_CMD_MASTER	 (1u << 2)
#define PCI_CMD_INTX_OFF (1u << 10)
#define ADM_DELETE_SQ	 0x00
#define ADM_CREATE_SQ	 0x01
#define ADM_DELETE_CQ	 0x04
#define ADM_CREATE_CQ	 0x05
#define DISABLE_WAIT_MS	 2000u /* at teardown, however long CAP.TO is */

int pcie_write_db(struct pcie_ctrl *pc, uint16_t qid, bool cq, uint16_t val)
{
	uint32_t v = val;
	uint64_t off = PCIE_DB_BASE + (2ull * qid + cq) * pc->db_stride;

	return nvemu_pci_post(pc->dev, 0, off, &v, sizeof(v));
}

static int pcie_reg_read(struct nvemu_drv_ctrl *ctrl, uint32_t off, unsigned size, uint64_t *val)
{
	struct pcie_ctrl *pc = pcie_ctrl_of(ctrl);
	uint32_t v32;
	int r;

	if (size == 8)
		return nvemu_pci_read64(pc->dev, 0, off, val);
	if (size != 4)
		return -EINVAL;
	r = nvemu_pci_read32(pc->dev, 0, off, &v32);
	*val = v32;
	return r;
}

static int pcie_reg_write(struct nvemu_drv_ctrl *ctrl, uint32_t off, unsigned size, uint64_t val)
{
	struct pcie_ctrl *pc = pcie_ctrl_of(ctrl);

	if (size == 8) /* low half first, as the spec allows a 32-bit host to */
		return nvemu_pci_write32(pc->dev, 0, off, (uint32_t)val)
			       ?: nvemu_pci_write32(pc->dev, 0, off + 4, (uint32_t)(val >> 32));
	if (size != 4)
		return -EINVAL;
	return nvemu_pci_write32(pc->dev, 0, off, (uint32_t)val);
}

/* CC.EN = 0 and CSTS.RDY = 0 within ms; -ENODEV if the device reads all ones. */
static int disable(struct pcie_ctrl *pc, unsigned ms)
{
	uint64_t deadline = drv_now_ns() + (uint64_t)ms * 1000000;
	uint32_t cc, csts;

	if (nvemu_pci_read32(pc->dev, 0, PCIE_REG_CC, &cc))
		return -ENODEV;
	if ((cc & 1) && nvemu_pci_write32(pc->dev, 0, PCIE_REG_CC, cc & ~1u))
		return -ENODEV;
	for (;;) {
		if (nvemu_pci_read32(pc->dev, 0, PCIE_REG_CSTS, &csts) || csts == 0xffffffffu)
			return -ENODEV;
		if (!(csts & 1))
			return 0;
		if (drv_now_ns() > deadline)
			return -ETIMEDOUT;
		poll(NULL, 0, 1);
	}
}

/* ---- interrupts */

void pcie_irq_done(struct pcie_ctrl *pc)
{
	if (pc->intx_masked && !pc->dev->broken) {
		pc->intx_masked = false;
		pc->dev->ops->irq_unmask(pc->dev, NVEMU_PCI_IRQ_INTX, 0);
	}
}

static void irq_off(struct pcie_ctrl *pc)
{
	if (!pc->nvec)
		return;
	if (!pc->dev->broken)
		pc->dev->ops->irq_set(pc->dev, pc->irq, NULL, 0);
	for (unsigned i = 0; i < pc->nvec; i++)
		if (pc->vec[i].fd >= 0)
			close(pc->vec[i].fd);
	free(pc->vec);
	pc->vec = NULL;
	pc->nvec = 0;
	pc->irq = NVEMU_PCI_IRQ_NONE;
	pc->intx_masked = false;
}

/* The kind and number of vectors the switches and the device allow. */
static enum nvemu_pci_irq irq_choose(struct pcie_ctrl *pc, unsigned *n)
{
	const struct nvemu_drv_opts *o = &pc->ctrl->opts;
	const struct nvemu_pci_dev_ops *ops = pc->dev->ops;
	unsigned want = 1u + (o->num_io_queues ? o->num_io_queues : 1u);
	unsigned c;

	*n = 1;
	if (want > 2048) /* MSI-X has at most 2048 vectors */
		want = 2048;
	if (o->nointr)
		return NVEMU_PCI_IRQ_NONE;
	if (!o->nomsix && (c = ops->irq_count(pc->dev, NVEMU_PCI_IRQ_MSIX))) {
		*n = c < want ? c : want;
		return NVEMU_PCI_IRQ_MSIX;
	}
	if (!o->nomsi && ops->irq_count(pc->dev, NVEMU_PCI_IRQ_MSI))
		return NVEMU_PCI_IRQ_MSI;
	if (ops->irq_count(pc->dev, NVEMU_PCI_IRQ_INTX))
		return NVEMU_PCI_IRQ_INTX;
	return NVEMU_PCI_IRQ_NONE;
}

static int irq_setup(struct pcie_ctrl *pc, struct nvemu_error *err)
{
	const struct nvemu_drv_opts *o = &pc->ctrl->opts;
	unsigned n, want = 1u + (o->num_io_queues ? o->num_io_queues : 1u);
	enum nvemu_pci_irq kind = irq_choose(pc, &n);
	int fds[2048], r;

	if (kind == NVEMU_PCI_IRQ_NONE || pc->nvec)
		return 0;
	pc->vec = calloc(n, sizeof(*pc->vec));
	if (!pc->vec)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	pc->irq = kind;
	pc->nvec = n;
	for (unsigned i = 0; i < n; i++) {
		pc->vec[i].fd = fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (fds[i] < 0) {
			r = -errno;
			irq_off(pc);
			return nvemu_error_set(err, r, "eventfd: %s", strerror(-r));
		}
	}
	/* vector 0 serves the admin queue and those beyond the vectors there are */
	pc->vec[0].shared = n < want;
	r = pc->dev->ops->irq_set(pc->dev, kind, fds, n);
	if (r) {
		irq_off(pc);
		return nvemu_error_set(err, r, "%s: interrupts (%s, %u vectors): %s", pc->dev->addr,
				       kind == NVEMU_PCI_IRQ_MSIX  ? "MSI-X"
				       : kind == NVEMU_PCI_IRQ_MSI ? "MSI"
								   : "INTx",
				       n, strerror(-r));
	}
	return 0;
}

/* Memory decoding and bus mastering on; INTx off unless it is what we use. */
static int pci_command(struct pcie_ctrl *pc)
{
	uint16_t cmd;
	int r = nvemu_pci_read(pc->dev, NVEMU_PCI_REGION_CFG, PCI_COMMAND, &cmd, 2);

	if (r)
		return r;
	cmd |= PCI_CMD_MEM | PCI_CMD_MASTER;
	if (pc->irq == NVEMU_PCI_IRQ_INTX)
		cmd &= (uint16_t)~PCI_CMD_INTX_OFF;
	else
		cmd |= PCI_CMD_INTX_OFF;
	return nvemu_pci_write(pc->dev, NVEMU_PCI_REGION_CFG, PCI_COMMAND, &cmd, 2);
}

/* ---- controller */

static int open_dev(struct nvemu_drv_ctrl *ctrl, struct nvemu_pci_dev **out,
		    struct nvemu_error *err)
{
	const char *addr = ctrl->trid.traddr;
	char path[NVEMU_DRV_TRADDR_MAX + 8];
	struct stat st;

	if (ctrl->trid.trtype == NVEMU_DRV_TRTYPE_PCIE)
		return nvemu_vfio_pci_open(addr, out, err);
	/* SPDK names the server's directory; its socket is "cntrl" in it */
	if (!stat(addr, &st) && S_ISDIR(st.st_mode)) {
		snprintf(path, sizeof(path), "%s/cntrl", addr);
		addr = path;
	}
	return nvemu_vfu_client_open(addr, ctrl->opts.connect_timeout_ms, out, err);
}

static int pcie_create(struct nvemu_drv_ctrl *ctrl, struct nvemu_error *err)
{
	struct pcie_ctrl *pc = calloc(1, sizeof(*pc));
	int r;

	if (!pc)
		return nvemu_error_set(err, -ENOMEM, "out of memory");
	pc->ctrl = ctrl;
	pc->irq = NVEMU_PCI_IRQ_NONE;
	r = open_dev(ctrl, &pc->dev, err);
	if (r) {
		free(pc);
		return r;
	}
	r = nvemu_pci_read64(pc->dev, 0, PCIE_REG_CAP, &pc->cap);
	if (r || pc->cap == ~0ull) {
		r = nvemu_error_set(err, r ? r : -ENODEV, "%s: CAP unreadable", pc->dev->addr);
	} else if (!(pc->cap >> 37 & 1)) {
		r = nvemu_error_set(err, -ENOTSUP, "%s: CAP.CSS: no NVM command set",
				    pc->dev->addr);
	} else if (pc->cap >> 48 & 0xf) {
		r = nvemu_error_set(err, -ENOTSUP, "%s: CAP.MPSMIN above 4 KiB", pc->dev->addr);
	} else if (PCIE_DB_BASE + (2ull * 1 + 2) * (4u << (pc->cap >> 32 & 0xf)) >
		   pc->dev->region[0].size) {
		r = nvemu_error_set(err, -ENOTSUP, "%s: BAR0 too small for its doorbells",
				    pc->dev->addr);
	}
	if (r) {
		nvemu_pci_dev_close(pc->dev);
		free(pc);
		return r;
	}
	pc->db_stride = 4u << (pc->cap >> 32 & 0xf);
	ctrl->tr = pc;
	return 0;
}

static int pcie_connect_admin(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *aq,
			      unsigned timeout_ms, struct nvemu_error *err)
{
	struct pcie_ctrl *pc = pcie_ctrl_of(ctrl);
	unsigned to_ms = (unsigned)(pc->cap >> 24 & 0xff) * 500;
	int r;

	if (pc->dev->broken) { /* the server went away (or broke the protocol): reconnect */
		struct nvemu_pci_dev *nd;

		r = open_dev(ctrl, &nd, err);
		if (r)
			return r;
		nvemu_pci_dev_close(pc->dev);
		pc->dev = nd;
	}
	r = disable(pc, to_ms && to_ms < timeout_ms ? to_ms : timeout_ms);
	if (r)
		return nvemu_error_set(err, r, "%s: controller does not disable: %s", pc->dev->addr,
				       strerror(-r));
	r = irq_setup(pc, err);
	if (r)
		return r;
	r = pci_command(pc);
	if (r)
		return nvemu_error_set(err, r, "%s: PCI command register: %s", pc->dev->addr,
				       strerror(-r));
	pcie_queue_free(pc, aq);
	r = pcie_queue_alloc(pc, aq, err);
	if (r)
		return r;
	{
		struct pcie_queue *q = aq->tr;
		uint32_t aqa = (uint32_t)(q->size - 1) << 16 | (uint32_t)(q->size - 1);

		r = nvemu_pci_write32(pc->dev, 0, PCIE_REG_AQA, aqa) ?:
		    pcie_reg_write(ctrl, PCIE_REG_ASQ, 8, q->sq.iova) ?:
		    pcie_reg_write(ctrl, PCIE_REG_ACQ, 8, q->cq.iova);
	}
	if (r)
		return nvemu_error_set(err, r, "%s: admin queue registers: %s", pc->dev->addr,
				       strerror(-r));
	aq->connected = true;
	return 0;
}

static int admin_cmd(struct nvemu_drv_ctrl *ctrl, uint8_t opc, uint32_t cdw10, uint32_t cdw11,
		     uint64_t prp1, unsigned timeout_ms)
{
	struct nvemu_sqe cmd = {.opc = opc, .dptr1 = prp1, .cdw10 = cdw10, .cdw11 = cdw11};
	struct nvemu_cqe cqe;

	return drv_exec_sync(ctrl->admin, &cmd, NULL, 0, timeout_ms, &cqe);
}

static int pcie_qpair_create(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *qp,
			     unsigned timeout_ms, struct nvemu_error *err)
{
	struct pcie_ctrl *pc = pcie_ctrl_of(ctrl);
	struct pcie_queue *q;
	uint32_t q10;
	bool ien;
	int r;

	pcie_queue_free(pc, qp);
	r = pcie_queue_alloc(pc, qp, err);
	if (r)
		return r;
	q = qp->tr;
	/* Identify has been read by now; admin commands use PRPs whatever SGLS says */
	pc->sgl = !ctrl->opts.nosgl && (ctrl->id.sgls & 3);
	q10 = (uint32_t)(q->size - 1) << 16 | q->qid;
	ien = pc->nvec != 0;
	r = admin_cmd(ctrl, ADM_CREATE_CQ, q10, (uint32_t)q->vector << 16 | (ien ? 2u : 0u) | 1u,
		      q->cq.iova, timeout_ms);
	if (!r) {
		r = admin_cmd(ctrl, ADM_CREATE_SQ, q10, (uint32_t)q->qid << 16 | 1u, q->sq.iova,
			      timeout_ms);
		if (r)
			admin_cmd(ctrl, ADM_DELETE_CQ, q->qid, 0, 0, timeout_ms);
	}
	if (r) {
		pcie_queue_free(pc, qp);
		return nvemu_error_set(err, r, "%s: create I/O queue %u: %s", pc->dev->addr,
				       qp->qid, strerror(-r));
	}
	qp->connected = true;
	return 0;
}

static void pcie_qpair_delete(struct nvemu_drv_ctrl *ctrl, struct nvemu_drv_qpair *qp)
{
	struct pcie_ctrl *pc = pcie_ctrl_of(ctrl);
	struct pcie_queue *q = qp->tr;

	if (!q)
		return;
	/* the device must stop using the rings before their memory goes */
	if (q->qid && ctrl->state == NVEMU_DRV_STATE_ENABLED && ctrl->admin && ctrl->admin->tr &&
	    !pc->dev->broken) {
		unsigned to = ctrl->opts.admin_timeout_ms;

		admin_cmd(ctrl, ADM_DELETE_SQ, q->qid, 0, 0, to);
		admin_cmd(ctrl, ADM_DELETE_CQ, q->qid, 0, 0, to);
	}
	pcie_queue_free(pc, qp);
}

static uint32_t pcie_get_events(struct nvemu_drv_qpair *qp)
{
	return EPOLLIN;
}

static uint32_t pcie_max_xfer(struct nvemu_drv_ctrl *ctrl)
{
	return PCIE_MAX_XFER;
}

static void pcie_disconnect(struct nvemu_drv_ctrl *ctrl)
{
	struct pcie_ctrl *pc = pcie_ctrl_of(ctrl);

	if (!pc)
		return;
	/* disabled first: the device stops touching the rings we free next */
	if (!pc->dev->broken)
		disable(pc, DISABLE_WAIT_MS);
	for (unsigned i = 0; i < ctrl->nr_qps; i++)
		if (ctrl->qps[i])
			pcie_queue_free(pc, ctrl->qps[i]);
	if (ctrl->admin)
		pcie_queue_free(pc, ctrl->admin);
	irq_off(pc);
}

static void pcie_destroy(struct nvemu_drv_ctrl *ctrl)
{
	struct pcie_ctrl *pc = pcie_ctrl_of(ctrl);

	if (!pc)
		return;
	pcie_disconnect(ctrl);
	nvemu_pci_dev_close(pc->dev);
	free(pc->queues);
	free(pc);
	ctrl->tr = NULL;
}

#define PCIE_OPS_COMMON                                                                            \
	.fabrics = false, .create = pcie_create, .connect_admin = pcie_connect_admin,              \
	.reg_read = pcie_reg_read, .reg_write = pcie_reg_write, .qpair_create = pcie_qpair_create, \
	.qpair_delete = pcie_qpair_delete, .submit = pcie_submit, .process = pcie_process,         \
	.get_fd = pcie_get_fd, .get_events = pcie_get_events, .max_xfer = pcie_max_xfer,           \
	.disconnect = pcie_disconnect, .destroy = pcie_destroy

const struct nvemu_drv_transport_ops drv_pcie_ops = {
	.name = "pcie",
	.trtype = NVEMU_DRV_TRTYPE_PCIE,
	PCIE_OPS_COMMON,
};

const struct nvemu_drv_transport_ops drv_vfio_user_ops = {
	.name = "vfio-user",
	.trtype = NVEMU_DRV_TRTYPE_VFIO_USER,
	PCIE_OPS_COMMON,
};
