/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the PCIe controller (include/nvemu/pcie.h) under
 * arbitrary register, config space and doorbell writes and arbitrary queue
 * contents in a 1 MiB fake guest memory.
 *
 * Build (see tests/fuzz/meson.build for the instrumented-library setup):
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
 *     -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link -Dc_link_args=-fsanitize=fuzzer-no-link
 *   ninja -C build-fuzz tests/fuzz/fuzz-pcie
 *   mkdir -p fuzz-out && build-fuzz/tests/fuzz/fuzz-pcie -max_total_time=300 fuzz-out
 * By hand, from the top of the tree:
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc -I<builddir> \
 *         tests/fuzz/fuzz-pcie.c src/engine/[a-z]*.c src/bdev/[a-z]*.c src/transport/loop.c \
 *         src/transport/pcie/[a-z]*.c -lnvme -luring -luuid -o fuzz-pcie
 *
 * Input: byte 0 bit 0 = share guest memory (map) or DMA only, bit 1 = doorbells
 * in shared memory too (nvemu_pcie_db_attach); then records (op & 15):
 *   0 le16 off, u8 size, le64 val   BAR0 write
 *   1 le16 off, u8 size, le32 val   config space write
 *   2 le32 addr, u8 len, data       guest memory write (queue entries, PRP lists, SGLs)
 *   3 u8 qid, 64-byte SQE           put an SQE at that SQ's tail and ring its doorbell
 *   4 le16 off, u8 size             BAR0 read
 *   5                               nvemu_pcie_ctrl_poll + nvemu_subsys_poll
 *   6 u8 depth                      enable: AQA/ASQ/ACQ + CC with valid values
 *   7 u8 qid                        create I/O CQ+SQ qid (admin commands in memory)
 *   8 u8 db, le32 val               store val into shared doorbell db, then
 *                                   nvemu_pcie_db_poll (also picks up shadow
 *                                   doorbells a Doorbell Buffer Config set up)
 */
#include <stdlib.h>
#include <string.h>

#include "engine/nvemu-internal.h"
#include <nvemu/pcie.h>

#define MEM (1u << 20)
#define ASQ 0x1000
#define ACQ 0x3000
#define QBASE 0x10000 /* I/O queue q: SQ at QBASE + q * 0x4000, CQ + 0x2000 */

struct fz {
	uint8_t *mem;
	bool map;
	uint16_t tail[8], size[8];
};

static int f_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct fz *z = ctx;

	if (addr >= MEM || len > MEM - addr)
		return -1;
	memcpy(buf, z->mem + addr, len);
	return 0;
}

static int f_write(void *ctx, uint64_t addr, const void *buf, size_t len)
{
	struct fz *z = ctx;

	if (addr >= MEM || len > MEM - addr)
		return -1;
	memcpy(z->mem + addr, buf, len);
	return 0;
}

static void *f_map(void *ctx, uint64_t addr, size_t len)
{
	struct fz *z = ctx;

	if (!z->map || addr >= MEM || len > MEM - addr)
		return NULL;
	return z->mem + addr;
}

static void f_msix(void *ctx, uint16_t v) { (void)ctx; (void)v; }
static void f_intx(void *ctx, bool l) { (void)ctx; (void)l; }

static const struct nvemu_pci_host_ops ops = {
	.dma_read = f_read, .dma_write = f_write, .map = f_map,
	.msix_notify = f_msix, .intx_set = f_intx,
};

static bool take(const uint8_t **p, size_t *n, void *out, size_t len)
{
	if (*n < len)
		return false;
	memcpy(out, *p, len);
	*p += len;
	*n -= len;
	return true;
}

static void sq_put(struct nvemu_pcie_ctrl *pc, struct fz *z, uint16_t qid, const void *sqe)
{
	uint64_t base = qid ? QBASE + qid * 0x4000ull : ASQ;

	if (qid >= 8 || !z->size[qid])
		return;
	memcpy(z->mem + base + (uint64_t)z->tail[qid] * 64, sqe, 64);
	z->tail[qid] = (uint16_t)((z->tail[qid] + 1) % z->size[qid]);
	nvemu_pcie_bar0_write(pc, 0x1000 + 8ull * qid, 4, z->tail[qid]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	struct nvemu_subsys *s = NULL;
	struct nvemu_pcie_ctrl *pc = NULL;
	struct nvemu_ctrl *ctrl;
	struct fz z = { 0 };
	uint16_t port, cntlid;
	uint32_t nsid;
	uint8_t op;
	uint32_t *dbmem = NULL;
	bool dbshm;

	if (!size)
		return 0;
	z.mem = calloc(1, MEM);
	if (!z.mem)
		return 0;
	z.map = data[0] & 1;
	dbshm = data[0] & 2;
	data++;
	size--;
	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:fuzz-pcie";
	if (nvemu_subsys_create(&sp, &s, NULL))
		goto out;
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	nvemu_ctrl_params_init(&cp);
	cp.num_io_queues = 7;
	cp.max_queue_entries = 64;
	cp.mdts = 3;
	if (nvemu_subsys_add_port(s, &pp, &port, NULL))
		goto out;
	cp.port_id = port;
	if (nvemu_subsys_add_ctrl_ex(s, &cp, &cntlid, NULL))
		goto out;
	ctrl = nvemu_subsys_ctrl(s, cntlid);
	if (nvemu_subsys_add_ns(s, 256, &nsid, NULL) || nvemu_ctrl_attach_ns(ctrl, nsid, NULL))
		goto out;
	if (nvemu_pcie_ctrl_create(ctrl, &ops, &z, &pc, NULL))
		goto out;
	if (dbshm) {
		dbmem = calloc(1, nvemu_pcie_db_area_size(pc));
		if (!dbmem)
			goto out;
		nvemu_pcie_db_attach(pc, dbmem);
	}

	while (take(&data, &size, &op, 1)) {
		uint16_t off;
		uint8_t sz, len, qid;
		uint64_t v64 = 0;
		uint32_t v32 = 0, addr;
		uint8_t sqe[64];

		if (op & 8) {
			uint8_t db;

			if (!take(&data, &size, &db, 1) || !take(&data, &size, &v32, 4))
				goto done;
			if (dbmem)
				dbmem[db % (nvemu_pcie_db_area_size(pc) / 4)] = v32;
			nvemu_pcie_db_poll(pc);
			continue;
		}
		switch (op & 7) {
		case 0:
			if (!take(&data, &size, &off, 2) || !take(&data, &size, &sz, 1) ||
			    !take(&data, &size, &v64, 8))
				goto done;
			nvemu_pcie_bar0_write(pc, off, sz & 15, v64);
			break;
		case 1:
			if (!take(&data, &size, &off, 2) || !take(&data, &size, &sz, 1) ||
			    !take(&data, &size, &v32, 4))
				goto done;
			nvemu_pcie_cfg_write(pc, off & 0x1fff, sz & 7, v32);
			break;
		case 2:
			if (!take(&data, &size, &addr, 4) || !take(&data, &size, &len, 1) || size < len)
				goto done;
			addr %= MEM - 256;
			memcpy(z.mem + addr, data, len);
			data += len;
			size -= len;
			break;
		case 3:
			if (!take(&data, &size, &qid, 1) || !take(&data, &size, sqe, 64))
				goto done;
			sq_put(pc, &z, qid & 7, sqe);
			break;
		case 4:
			if (!take(&data, &size, &off, 2) || !take(&data, &size, &sz, 1))
				goto done;
			(void)nvemu_pcie_bar0_read(pc, off, sz & 15);
			break;
		case 5:
			nvemu_pcie_ctrl_poll(pc);
			nvemu_subsys_poll(s);
			break;
		case 6:
			if (!take(&data, &size, &len, 1))
				goto done;
			len = (uint8_t)(len % 63 + 2);
			nvemu_pcie_bar0_write(pc, NVEMU_REG_CC, 4, 0);
			nvemu_pcie_bar0_write(pc, NVEMU_REG_AQA, 4, (uint32_t)(len - 1) * 0x10001u);
			nvemu_pcie_bar0_write(pc, NVEMU_REG_ASQ, 8, ASQ);
			nvemu_pcie_bar0_write(pc, NVEMU_REG_ACQ, 8, ACQ);
			nvemu_pcie_bar0_write(pc, NVEMU_REG_CC, 4, 1u | 6u << 16 | 4u << 20);
			memset(z.tail, 0, sizeof(z.tail));
			memset(z.size, 0, sizeof(z.size));
			z.size[0] = len;
			break;
		case 7: {
			struct nvemu_sqe c;

			if (!take(&data, &size, &qid, 1))
				goto done;
			qid = (uint8_t)(qid % 7 + 1);
			memset(&c, 0, sizeof(c));
			c.opc = nvme_admin_create_cq;
			c.dptr1 = QBASE + qid * 0x4000ull + 0x2000;
			c.cdw10 = qid | 31u << 16;
			c.cdw11 = 3 | (uint32_t)qid << 16;
			sq_put(pc, &z, 0, &c);
			c.opc = nvme_admin_create_sq;
			c.dptr1 = QBASE + qid * 0x4000ull;
			c.cdw11 = 1 | (uint32_t)qid << 16;
			sq_put(pc, &z, 0, &c);
			z.size[qid] = 32;
			z.tail[qid] = 0;
			break;
		}
		}
	}
done:
	nvemu_subsys_poll(s);
out:
	nvemu_pcie_ctrl_destroy(pc);
	free(dbmem);
	if (s)
		nvemu_subsys_destroy(s);
	free(z.mem);
	return 0;
}
