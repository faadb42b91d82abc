/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the completion path of the NVMe-over-PCIe host
 * transport (src/driver/pcie-qpair.c) under CQ ring contents a hostile
 * device writes. A queue pair with commands in flight (reads with data,
 * writes, data-less commands; PRPs or SGLs) sits on a device stub whose
 * registers read zero; the input is written into the CQ ring, round after
 * round, and the queue processed: every completion must either finish a
 * command in flight (its callback runs once) or fail the queue with
 * -EPROTO, never touch memory outside the queue's buffers.
 *
 * Input: u8 queue size (2 + n % 63), u8 flags (bit 0: SGLs, bit 1: refill
 * commands each round), u8 commands to start with, then rounds of
 * u8 length + that many bytes copied into the ring at the CQ head.
 *
 * With -DFUZZ_STANDALONE it is a plain program (the test suite runs it
 * without libFuzzer): it replays the files or directories named on the
 * command line, then FUZZ_ITERATIONS random inputs of mostly well-formed
 * completions (the phase tag right, CIDs in range), and prints TAP.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "driver/pcie-host.h"

struct stub {
	struct nvemu_pci_dev dev;
};

static int st_read(struct nvemu_pci_dev *d, unsigned region, uint64_t off, void *buf, size_t len)
{
	memset(buf, 0, len);
	return 0;
}

static int st_write(struct nvemu_pci_dev *d, unsigned region, uint64_t off, const void *buf,
		    size_t len)
{
	return 0;
}

static int st_map(struct nvemu_pci_dev *d, void *vaddr, size_t len, int fd, uint64_t fd_off,
		  uint64_t iova)
{
	return 0;
}

static int st_unmap(struct nvemu_pci_dev *d, uint64_t iova, size_t len)
{
	return 0;
}

static unsigned st_count(struct nvemu_pci_dev *d, enum nvemu_pci_irq kind)
{
	return 0;
}

static int st_irq(struct nvemu_pci_dev *d, enum nvemu_pci_irq kind, const int *efds, unsigned n)
{
	return 0;
}

static int st_unmask(struct nvemu_pci_dev *d, enum nvemu_pci_irq kind, unsigned vector)
{
	return 0;
}

static int st_reset(struct nvemu_pci_dev *d)
{
	return 0;
}

static void st_close(struct nvemu_pci_dev *d)
{
}

static const struct nvemu_pci_dev_ops stub_ops = {
	.name = "stub",
	.region_read = st_read,
	.region_write = st_write,
	.region_post = st_write,
	.dma_map = st_map,
	.dma_unmap = st_unmap,
	.irq_count = st_count,
	.irq_set = st_irq,
	.irq_unmask = st_unmask,
	.reset = st_reset,
	.close = st_close,
};

struct cmd_slot {
	uint8_t buf[8192];
	unsigned done;
};

static struct cmd_slot slots[64];

static void cb(void *arg, int err, const struct nvemu_cqe *cqe)
{
	struct cmd_slot *s = arg;

	if (s->done++) /* a command finishes once */
		abort();
	if (err != -ECANCELED && (!cqe || (err == 0) != (cqe->status == 0)))
		abort();
}

static void quiet(void *arg, int level, const char *msg)
{
}

/* Start a command on a free slot: read, write (with data of 1..16 blocks) or a flush. */
static void start_one(struct nvemu_drv_qpair *qp, unsigned kind)
{
	struct drv_req *req = drv_req_get(qp);
	struct cmd_slot *s;

	if (!req)
		return;
	s = &slots[req->cid];
	s->done = 0;
	memset(&req->cmd, 0, sizeof(req->cmd));
	req->cmd.nsid = 1;
	req->cb = cb;
	req->arg = s;
	req->cmd.opc = kind % 3 == 0 ? 0x02 : kind % 3 == 1 ? 0x01 : 0x00;
	if (req->cmd.opc) {
		req->buf = s->buf;
		req->len = 512u * (1 + kind % 16);
	}
	if (drv_req_send(req))
		abort(); /* the stub accepts every doorbell */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvemu_drv_ctrl ctrl = {0};
	struct pcie_ctrl pc = {0};
	struct stub dev;
	struct nvemu_drv_qpair *qp;
	struct pcie_queue *q;
	size_t off = 3;
	uint16_t qsize;

	if (size < 3)
		return 0;
	qsize = (uint16_t)(2 + data[0] % 63);
	memset(&dev, 0, sizeof(dev));
	nvemu_pci_dev_init(&dev.dev, &stub_ops, "fuzz");
	dev.dev.region[0].size = 0x4000;
	dev.dev.region[0].readable = dev.dev.region[0].writable = true;
	ctrl.ops = &drv_vfio_user_ops;
	ctrl.state = NVEMU_DRV_STATE_ENABLED;
	ctrl.opts.log = quiet;
	ctrl.tr = &pc;
	pc.ctrl = &ctrl;
	pc.dev = &dev.dev;
	pc.db_stride = 4;
	pc.irq = NVEMU_PCI_IRQ_NONE;
	pc.sgl = data[1] & 1;
	qp = drv_qpair_alloc(&ctrl, 1, qsize);
	if (!qp || pcie_queue_alloc(&pc, qp, NULL))
		abort();
	qp->connected = true;
	q = qp->tr;
	for (unsigned i = 0; i < data[2] % qsize; i++)
		start_one(qp, i + data[2]);
	while (off < size) {
		size_t n = data[off++], room = (size_t)(q->size - q->cq_head) * 16;

		if (n > size - off)
			n = size - off;
		if (n > room)
			n = room;
		memcpy((uint8_t *)q->cq.vaddr + (size_t)q->cq_head * 16, data + off, n);
		off += n;
		if (pcie_process(qp, 0) < 0)
			break;
		if (data[1] & 2)
			for (unsigned i = 0; i < 4; i++)
				start_one(qp, (unsigned)off + i);
	}
	drv_qpair_fail_all(qp, -ECANCELED);
	pcie_queue_free(&pc, qp);
	drv_qpair_free(qp);
	free(pc.queues);
	return 0;
}

#ifdef FUZZ_STANDALONE
#include "standalone.h"

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
	return *s;
}

/* Rounds of CQEs for queue 1 with phase 1, CIDs and SQ heads mostly in range. */
static size_t random_input(uint8_t *b, size_t cap, uint64_t *s)
{
	uint8_t qsize = (uint8_t)(next(s) % 63);
	size_t n = 3;

	b[0] = qsize;
	b[1] = (uint8_t)next(s);
	b[2] = (uint8_t)next(s);
	while (n + 1 + 64 < cap && next(s) % 8) {
		uint8_t k = (uint8_t)(1 + next(s) % 4);

		b[n++] = (uint8_t)(k * 16);
		for (unsigned i = 0; i < k; i++, n += 16) {
			uint32_t e[4];
			uint64_t r = next(s);

			e[0] = (uint32_t)r;
			e[1] = 0;
			e[2] = (r % 13 ? 1u : (uint32_t)(r >> 8)) << 16 |
			       (uint32_t)((r >> 16) % (qsize + 3u));
			e[3] = (r % 11 ? 1u << 16 : (uint32_t)(r >> 32) & 0x10000) |
			       (uint32_t)((r >> 24) % (qsize + 3u)) | (r % 5 ? 0 : 0x20000u);
			memcpy(b + n, e, 16);
		}
	}
	return n;
}

size_t fuzz_standalone_input(unsigned i, uint8_t *buf, size_t cap, uint64_t *rng,
			     const struct fuzz_seeds *seeds)
{
	(void)i;
	(void)seeds;
	return random_input(buf, cap < 4096 ? cap : 4096, rng);
}
#endif
