/* SPDX-License-Identifier: MIT */
/*
 * The PCIe controller driven by an in-process host: a 16 MiB fake guest
 * memory, host ops over it, and a tiny "driver" that writes registers,
 * builds SQEs in memory, rings doorbells and reaps CQEs by phase tag.
 */
#include <stdlib.h>
#include <time.h>

#include "test-util.h"
#include <nvemu/pcie.h>

#define MEM_SIZE (16u << 20)
#define ASQ	 0x10000
#define ACQ	 0x20000
#define IOSQ	 0x30000
#define IOCQ	 0x40000
#define DATA	 0x100000 /* data pages */
#define DATA2	 0x400000
#define LISTS	 0x800000 /* PRP lists / SGL segments */
#define QDEPTH	 64
#define NQ	 4

struct fx {
	struct nvemu_subsys *subsys;
	struct nvemu_ctrl *ctrl;
	struct nvemu_pcie_ctrl *pc;
	uint8_t *mem;
	bool use_map;
	unsigned msix[NQ + 1];
	bool intx;
	unsigned intx_asserts;
	uint16_t tail[NQ + 1], head[NQ + 1], size[NQ + 1];
	bool phase[NQ + 1];
	uint16_t cid;
	uint64_t sqbase[NQ + 1], cqbase[NQ + 1];
	/* how doorbells are rung: registers, shared doorbell memory, shadow buffer */
	enum { DB_REG, DB_MEM, DB_SHADOW } dbmode;
	uint32_t *dbmem;
};

/* ---- host ops */

static int h_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct fx *f = ctx;

	if (addr >= MEM_SIZE || len > MEM_SIZE - addr)
		return -EFAULT;
	memcpy(buf, f->mem + addr, len);
	return 0;
}

static int h_write(void *ctx, uint64_t addr, const void *buf, size_t len)
{
	struct fx *f = ctx;

	if (addr >= MEM_SIZE || len > MEM_SIZE - addr)
		return -EFAULT;
	memcpy(f->mem + addr, buf, len);
	return 0;
}

static void *h_map(void *ctx, uint64_t addr, size_t len)
{
	struct fx *f = ctx;

	if (!f->use_map || addr >= MEM_SIZE || len > MEM_SIZE - addr)
		return NULL;
	return f->mem + addr;
}

static void h_msix(void *ctx, uint16_t v)
{
	struct fx *f = ctx;

	assert_true(v <= NQ);
	f->msix[v]++;
}

static void h_intx(void *ctx, bool level)
{
	struct fx *f = ctx;

	f->intx = level;
	if (level)
		f->intx_asserts++;
}

static const struct nvemu_pci_host_ops host_ops = {
	.dma_read = h_read,
	.dma_write = h_write,
	.map = h_map,
	.msix_notify = h_msix,
	.intx_set = h_intx,
};

static int setup_common(void **state, bool use_map)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	struct nvemu_error err = {0};
	uint16_t port, cntlid;
	uint32_t nsid;

	assert_non_null(f);
	f->mem = calloc(1, MEM_SIZE);
	assert_non_null(f->mem);
	f->use_map = use_map;
	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:pcie";
	sp.vendor.pci_vid = 0x1b36;
	sp.vendor.pci_did = 0x0010;
	sp.vendor.pci_svid = 0x1af4;
	sp.vendor.pci_sdid = 0x1100;
	assert_int_equal(nvemu_subsys_create(&sp, &f->subsys, &err), 0);
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	pp.pcie.max_link_speed = 4;
	pp.pcie.max_link_width = 8;
	assert_int_equal(nvemu_subsys_add_port(f->subsys, &pp, &port, &err), 0);
	nvemu_ctrl_params_init(&cp);
	cp.port_id = port;
	cp.num_io_queues = NQ;
	cp.mdts = 5; /* 128 KiB */
	assert_int_equal(nvemu_subsys_add_ctrl_ex(f->subsys, &cp, &cntlid, &err), 0);
	f->ctrl = nvemu_subsys_ctrl(f->subsys, cntlid);
	assert_int_equal(nvemu_subsys_add_ns(f->subsys, 1024, &nsid, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(f->ctrl, nsid, &err), 0);
	assert_int_equal(nvemu_pcie_ctrl_create(f->ctrl, &host_ops, f, &f->pc, &err), 0);
	*state = f;
	return 0;
}

static int setup_map(void **state)
{
	return setup_common(state, true);
}
static int setup_dma(void **state)
{
	return setup_common(state, false);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	nvemu_pcie_ctrl_destroy(f->pc);
	nvemu_subsys_destroy(f->subsys);
	free(f->mem);
	free(f);
	return 0;
}

/* ---- register helpers */

static uint32_t r32(struct fx *f, uint64_t off)
{
	return (uint32_t)nvemu_pcie_bar0_read(f->pc, off, 4);
}
static void w32(struct fx *f, uint64_t off, uint32_t v)
{
	nvemu_pcie_bar0_write(f->pc, off, 4, v);
}
static uint32_t csts(struct fx *f)
{
	return r32(f, NVEMU_REG_CSTS);
}

#define CC_ENABLE (1u | 6u << 16 | 4u << 20)
#define RDY	  1u
#define CFS	  2u

static void admin_regs(struct fx *f, uint16_t depth)
{
	w32(f, NVEMU_REG_AQA, (uint32_t)(depth - 1) | (uint32_t)(depth - 1) << 16);
	nvemu_pcie_bar0_write(f->pc, NVEMU_REG_ASQ, 8, ASQ);
	nvemu_pcie_bar0_write(f->pc, NVEMU_REG_ACQ, 8, ACQ);
	f->size[0] = depth;
	f->sqbase[0] = ASQ;
	f->cqbase[0] = ACQ;
	f->tail[0] = f->head[0] = 0;
	f->phase[0] = true;
}

static void enable_depth(struct fx *f, uint16_t depth)
{
	admin_regs(f, depth);
	w32(f, NVEMU_REG_CC, CC_ENABLE);
	assert_int_equal(csts(f) & (RDY | CFS), RDY);
}

static void enable(struct fx *f)
{
	enable_depth(f, QDEPTH);
}

#define SHADOW	 0xc00000 /* Doorbell Buffer Config pages */
#define EVENTIDX 0xc01000

static uint32_t *shadow_at(struct fx *f, uint64_t base, unsigned db)
{
	return (uint32_t *)(void *)(f->mem + base + 4u * db);
}

static void ring(struct fx *f, unsigned db, uint32_t v)
{
	if (f->dbmode == DB_MEM) {
		__atomic_store_n(&f->dbmem[db], v, __ATOMIC_RELEASE);
		nvemu_pcie_db_poll(f->pc);
	} else if (f->dbmode == DB_SHADOW && db >= 2) {
		/* the host side of EventIdx: the shadow only, the controller polls it */
		__atomic_store_n(shadow_at(f, SHADOW, db), v, __ATOMIC_RELEASE);
		nvemu_pcie_db_poll(f->pc);
	} else {
		w32(f, 0x1000 + 4u * db, v);
	}
}

static void db_sq(struct fx *f, uint16_t qid, uint32_t v)
{
	ring(f, 2u * qid, v);
}
static void db_cq(struct fx *f, uint16_t qid, uint32_t v)
{
	ring(f, 2u * qid + 1, v);
}

static void submit(struct fx *f, uint16_t qid, struct nvemu_sqe *cmd)
{
	cmd->cid = ++f->cid;
	memcpy(f->mem + f->sqbase[qid] + (uint64_t)f->tail[qid] * 64, cmd, 64);
	f->tail[qid] = (f->tail[qid] + 1) % f->size[qid];
	db_sq(f, qid, f->tail[qid]);
}

/* Take the next CQE if its phase tag says it is new; ring the CQ head. */
static bool reap_nodb(struct fx *f, uint16_t qid, struct nvemu_cqe *cqe)
{
	uint8_t *e = f->mem + f->cqbase[qid] + (uint64_t)f->head[qid] * 16;
	uint16_t st;

	memcpy(&st, e + 14, 2);
	if ((st & 1) != f->phase[qid])
		return false;
	memcpy(cqe, e, 16);
	if (++f->head[qid] == f->size[qid]) {
		f->head[qid] = 0;
		f->phase[qid] = !f->phase[qid];
	}
	return true;
}

static bool reap(struct fx *f, uint16_t qid, struct nvemu_cqe *cqe)
{
	if (!reap_nodb(f, qid, cqe))
		return false;
	db_cq(f, qid, f->head[qid]);
	return true;
}

static uint16_t cqe_status(const struct nvemu_cqe *c)
{
	return c->status >> 1;
}

static uint16_t run(struct fx *f, uint16_t qid, struct nvemu_sqe *cmd, struct nvemu_cqe *out)
{
	struct nvemu_cqe c;

	submit(f, qid, cmd);
	assert_true(reap(f, qid, &c));
	assert_int_equal(c.cid, cmd->cid);
	assert_int_equal(c.sqid, qid);
	assert_int_equal(c.sqhd, f->tail[qid]);
	if (out)
		*out = c;
	return cqe_status(&c);
}

static uint16_t admin(struct fx *f, struct nvemu_sqe *cmd)
{
	return run(f, 0, cmd, NULL);
}

static uint16_t create_cq(struct fx *f, uint16_t qid, uint64_t addr, uint16_t size, uint16_t iv,
			  uint32_t flags)
{
	struct nvemu_sqe c = {.opc = nvme_admin_create_cq, .dptr1 = addr};

	c.cdw10 = qid | (uint32_t)(size - 1) << 16;
	c.cdw11 = flags | (uint32_t)iv << 16;
	return admin(f, &c);
}

static uint16_t create_sq(struct fx *f, uint16_t qid, uint64_t addr, uint16_t size, uint16_t cqid,
			  uint32_t flags)
{
	struct nvemu_sqe c = {.opc = nvme_admin_create_sq, .dptr1 = addr};

	c.cdw10 = qid | (uint32_t)(size - 1) << 16;
	c.cdw11 = flags | (uint32_t)cqid << 16;
	return admin(f, &c);
}

static void io_pair(struct fx *f)
{
	assert_success(create_cq(f, 1, IOCQ, QDEPTH, 1, 3));
	assert_success(create_sq(f, 1, IOSQ, QDEPTH, 1, 1));
	f->size[1] = QDEPTH;
	f->sqbase[1] = IOSQ;
	f->cqbase[1] = IOCQ;
	f->phase[1] = true;
	f->tail[1] = f->head[1] = 0;
}

static uint16_t rw(struct fx *f, uint8_t opc, uint64_t slba, uint32_t nlb, uint8_t psdt,
		   uint64_t d1, uint64_t d2)
{
	struct nvemu_sqe c = {
		.opc = opc, .nsid = 1, .flags = (uint8_t)(psdt << 6), .dptr1 = d1, .dptr2 = d2};

	c.cdw10 = (uint32_t)slba;
	c.cdw11 = (uint32_t)(slba >> 32);
	c.cdw12 = nlb - 1;
	return run(f, 1, &c, NULL);
}

static void fill(struct fx *f, uint64_t addr, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		f->mem[addr + i] = (uint8_t)(seed + i * 7 + i / 512);
}

static void put64(struct fx *f, uint64_t addr, uint64_t v)
{
	memcpy(f->mem + addr, &v, 8);
}

static void sgl(struct fx *f, uint64_t at, uint64_t addr, uint32_t len, uint8_t type)
{
	put64(f, at, addr);
	memcpy(f->mem + at + 8, &len, 4);
	memset(f->mem + at + 12, 0, 3);
	f->mem[at + 15] = type;
}

#define T_DATA	 0x00
#define T_BUCKET 0x10
#define T_SEG	 0x20
#define T_LAST	 0x30

/* Put an SGL descriptor in the SQE's DPTR (dptr1 = address, dptr2 = len | type). */
static void sqe_sgl(uint64_t *d1, uint64_t *d2, uint64_t addr, uint32_t len, uint8_t type)
{
	*d1 = addr;
	*d2 = len | (uint64_t)type << 56;
}

/* ---- configuration space */

static void test_cfg_ids(void **state)
{
	struct fx *f = *state;
	struct nvemu_pcie_ctrl *pc = f->pc;
	uint8_t ptr, ids[4] = {0};
	unsigned n = 0;

	assert_int_equal(nvemu_pcie_cfg_read(pc, 0, 2), 0x1b36);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 2, 2), 0x0010);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x2c, 4), 0x11001af4);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x08, 4) >> 8, 0x010802);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x0e, 1), 0);
	assert_true(nvemu_pcie_cfg_read(pc, 0x06, 2) & (1u << 4));
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x3d, 1), 1);
	/* read-only ids */
	nvemu_pcie_cfg_write(pc, 0, 4, 0xdeadbeef);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0, 2), 0x1b36);

	for (ptr = (uint8_t)nvemu_pcie_cfg_read(pc, 0x34, 1); ptr && n < 4; n++) {
		ids[n] = (uint8_t)nvemu_pcie_cfg_read(pc, ptr, 1);
		if (ids[n] == 0x11) {
			assert_int_equal(nvemu_pcie_cfg_read(pc, ptr + 2, 2) & 0x7ff, NQ); /* N-1 */
			assert_int_equal(nvemu_pcie_cfg_read(pc, ptr + 4, 4),
					 NVEMU_PCIE_MSIX_TABLE_OFF);
			assert_int_equal(nvemu_pcie_cfg_read(pc, ptr + 8, 4),
					 NVEMU_PCIE_MSIX_PBA_OFF);
		}
		if (ids[n] == 0x10) {
			assert_int_equal(nvemu_pcie_cfg_read(pc, ptr + 2, 2) & 0xf0,
					 0); /* endpoint */
			assert_int_equal(nvemu_pcie_cfg_read(pc, ptr + 0x12, 2) & 0xf, 4);
			assert_int_equal((nvemu_pcie_cfg_read(pc, ptr + 0x12, 2) >> 4) & 0x3f, 8);
		}
		ptr = (uint8_t)nvemu_pcie_cfg_read(pc, ptr + 1, 1);
	}
	assert_int_equal(n, 3);
	assert_int_equal(ids[0], 0x01);
	assert_int_equal(ids[1], 0x11);
	assert_int_equal(ids[2], 0x10);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x100, 4), 0);
	assert_int_equal(nvemu_pcie_msix_vectors(pc), NQ + 1);
	/* out of range */
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x1000, 4), 0xffffffffu);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0xffe, 4), 0xffffffffu);
}

static void test_cfg_bar_command(void **state)
{
	struct fx *f = *state;
	struct nvemu_pcie_ctrl *pc = f->pc;

	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x10, 4), 0x4);
	nvemu_pcie_cfg_write(pc, 0x10, 4, 0xffffffff);
	nvemu_pcie_cfg_write(pc, 0x14, 4, 0xffffffff);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x10, 4), ~(NVEMU_PCIE_BAR0_SIZE - 1) | 0x4);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x14, 4), 0xffffffffu);
	nvemu_pcie_cfg_write(pc, 0x10, 4, 0xfebd0000);
	nvemu_pcie_cfg_write(pc, 0x14, 4, 0x1);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x10, 4), 0xfebd0004);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x14, 4), 1);
	for (uint32_t bar = 0x18; bar <= 0x24; bar += 4) {
		nvemu_pcie_cfg_write(pc, bar, 4, 0xffffffff);
		assert_int_equal(nvemu_pcie_cfg_read(pc, bar, 4), 0);
	}
	nvemu_pcie_cfg_write(pc, 0x04, 2, 0xffff);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x04, 2), 0x0546);
	nvemu_pcie_cfg_write(pc, 0x04, 2, 0x0006);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x04, 2), 0x0006);
	nvemu_pcie_cfg_write(pc, 0x3c, 1, 11);
	assert_int_equal(nvemu_pcie_cfg_read(pc, 0x3c, 1), 11);
}

/* ---- registers */

static void test_regs(void **state)
{
	struct fx *f = *state;
	uint64_t cap = nvemu_pcie_bar0_read(f->pc, 0, 8);

	assert_int_equal(cap & 0xffff, 1023);	/* MQES */
	assert_true(cap & (1ull << 16));	/* CQR */
	assert_int_equal((cap >> 32) & 0xf, 0); /* DSTRD */
	assert_true((cap >> 37) & 1);		/* CSS NVM */
	assert_true((cap >> 36) & 1);		/* NSSRS */
	assert_true((cap >> 24) & 0xff);	/* TO */
	assert_int_equal(cap, (uint64_t)r32(f, 4) << 32 | r32(f, 0));
	assert_int_equal(r32(f, NVEMU_REG_VS), 0x00020000);
	assert_int_equal(r32(f, 0x38), 0);
	assert_int_equal(r32(f, 0x3c), 0);
	assert_int_equal(nvemu_pcie_bar0_read(f->pc, NVEMU_REG_VS + 2, 2), 2);
	w32(f, NVEMU_REG_AQA, 0xffffffff);
	assert_int_equal(r32(f, NVEMU_REG_AQA), 0x0fff0fff);
	nvemu_pcie_bar0_write(f->pc, NVEMU_REG_ASQ, 8, 0x123456789000ull);
	assert_int_equal(nvemu_pcie_bar0_read(f->pc, NVEMU_REG_ASQ, 8), 0x123456789000ull);
	w32(f, NVEMU_REG_ACQ, 0xabcde123);
	w32(f, NVEMU_REG_ACQ + 4, 0x1);
	assert_int_equal(nvemu_pcie_bar0_read(f->pc, NVEMU_REG_ACQ, 8), 0x1abcde000ull);
	/* CAP is read-only */
	w32(f, 0, 0);
	assert_int_equal(nvemu_pcie_bar0_read(f->pc, 0, 8), cap);
	/* INTMS sets, INTMC clears, both read the mask */
	w32(f, NVEMU_REG_INTMS, 0x5);
	w32(f, NVEMU_REG_INTMC, 0x1);
	assert_int_equal(r32(f, NVEMU_REG_INTMS), 0x4);
	assert_int_equal(r32(f, NVEMU_REG_INTMC), 0x4);
	/* bad accesses */
	assert_int_equal(nvemu_pcie_bar0_read(f->pc, NVEMU_PCIE_BAR0_SIZE, 4), 0);
	assert_int_equal(nvemu_pcie_bar0_read(f->pc, 0, 3), 0);
	nvemu_pcie_bar0_write(f->pc, NVEMU_PCIE_BAR0_SIZE - 2, 4, 0);
}

static void test_enable_reset(void **state)
{
	struct fx *f = *state;

	enable(f);
	assert_int_equal(r32(f, NVEMU_REG_CC), CC_ENABLE);
	io_pair(f);
	/* controller reset: queues gone, registers kept */
	w32(f, NVEMU_REG_CC, 0);
	assert_int_equal(csts(f) & RDY, 0);
	assert_int_equal(r32(f, NVEMU_REG_ASQ), ASQ);
	struct nvemu_pcie_queue_debug d;

	assert_int_equal(nvemu_pcie_ctrl_debug(f->pc, 1, &d), 0);
	assert_false(d.sq_valid);
	assert_false(d.cq_valid);
	assert_int_equal(nvemu_pcie_ctrl_debug(f->pc, NQ + 1, &d), -ENOENT);
	/* and again, from scratch */
	memset(f->mem + ACQ, 0, 4096);
	enable(f);
	io_pair(f);
	fill(f, DATA, 512, 1);
	assert_success(rw(f, nvme_cmd_write, 0, 1, 0, DATA, 0));
}

static void test_enable_invalid(void **state)
{
	struct fx *f = *state;

	/* AQA of one entry */
	admin_regs(f, 2);
	w32(f, NVEMU_REG_AQA, 0);
	w32(f, NVEMU_REG_CC, CC_ENABLE);
	assert_int_equal(csts(f) & (RDY | CFS), CFS);
	w32(f, NVEMU_REG_CC, 0);
	assert_int_equal(csts(f) & (RDY | CFS), 0);
	/* ASQ not aligned to an 8 KiB memory page (MPS = 1) */
	admin_regs(f, 16);
	nvemu_pcie_bar0_write(f->pc, NVEMU_REG_ASQ, 8, ASQ + 0x1000);
	w32(f, NVEMU_REG_CC, CC_ENABLE | 1u << 7);
	assert_int_equal(csts(f) & (RDY | CFS), CFS);
	w32(f, NVEMU_REG_CC, 0);
	/* IOSQES / IOCQES other than 6 / 4 */
	admin_regs(f, 16);
	w32(f, NVEMU_REG_CC, 1u | 4u << 20);
	assert_int_equal(csts(f) & (RDY | CFS), CFS);
	w32(f, NVEMU_REG_CC, 0);
	w32(f, NVEMU_REG_CC, 1u | 6u << 16 | 5u << 20);
	assert_int_equal(csts(f) & (RDY | CFS), CFS);
	w32(f, NVEMU_REG_CC, 0);
	/* MPS above MPSMAX, AMS not round robin */
	w32(f, NVEMU_REG_CC, CC_ENABLE | 5u << 7);
	assert_int_equal(csts(f) & (RDY | CFS), CFS);
	w32(f, NVEMU_REG_CC, 0);
	w32(f, NVEMU_REG_CC, CC_ENABLE | 1u << 11);
	assert_int_equal(csts(f) & (RDY | CFS), CFS);
	w32(f, NVEMU_REG_CC, 0);
	/* doorbells of a disabled controller do nothing */
	db_sq(f, 0, 1);
	assert_int_equal(f->pc ? csts(f) & RDY : 1, 0);
	enable(f);
}

static void test_shutdown(void **state)
{
	struct fx *f = *state;
	uint64_t t0 = nvemu_now_ns();

	enable(f);
	w32(f, NVEMU_REG_CC, CC_ENABLE | 1u << 14); /* SHN = normal */
	while (((csts(f) >> 2) & 3) != 2 && nvemu_now_ns() - t0 < 2000000000ull)
		nvemu_subsys_poll(f->subsys);
	assert_int_equal((csts(f) >> 2) & 3, 2);
	w32(f, NVEMU_REG_CC, 0);
	assert_int_equal(csts(f), 0);
}

static void test_nssr(void **state)
{
	struct fx *f = *state;

	enable(f);
	w32(f, NVEMU_REG_NSSR, 0x12345678);
	assert_int_equal(csts(f) & RDY, RDY);
	assert_int_equal(r32(f, NVEMU_REG_NSSR), 0);
	w32(f, NVEMU_REG_NSSR, 0x4E564D65);
	assert_int_equal(csts(f) & RDY, 0);
	assert_true(csts(f) & (1u << 4));
	assert_int_equal(r32(f, NVEMU_REG_CC), 0);
	w32(f, NVEMU_REG_CSTS, 1u << 4); /* RW1C */
	assert_false(csts(f) & (1u << 4));
	memset(f->mem + ACQ, 0, 4096);
	enable(f);
}

/* ---- admin queue */

static void test_identify(void **state)
{
	struct fx *f = *state;
	struct nvemu_sqe c = {
		.opc = nvme_admin_identify, .dptr1 = DATA, .cdw10 = NVME_IDENTIFY_CNS_CTRL};
	struct nvemu_cqe cqe;
	struct nvme_id_ctrl id;

	enable(f);
	assert_success(run(f, 0, &c, &cqe));
	assert_int_equal(cqe.status & 1, 1); /* phase of the first pass */
	memcpy(&id, f->mem + DATA, sizeof(id));
	assert_int_equal(le16toh(id.vid), 0x1b36);
	assert_int_equal(le16toh(id.ssvid), 0x1af4);
	assert_int_equal(id.mdts, 5);
	assert_int_equal(le32toh(id.sgls), 1u | NVME_CTRL_SGLS_BIT_BUCKET);
	assert_int_equal(id.sqes, 0x66);

	/* PRP1 at an offset: the 4 KiB straddle PRP1's page and PRP2's. */
	memset(f->mem + DATA, 0, 0x3000);
	c.dptr1 = DATA + 0x800;
	c.dptr2 = DATA2;
	assert_success(admin(f, &c));
	memcpy(&id, f->mem + DATA + 0x800, 0x800);
	memcpy((uint8_t *)&id + 0x800, f->mem + DATA2, 0x800);
	assert_int_equal(le16toh(id.vid), 0x1b36);
	assert_int_equal(le32toh(id.sgls), 1u | NVME_CTRL_SGLS_BIT_BUCKET);
	/* unaligned PRP2 */
	c.dptr2 = DATA2 + 8;
	assert_status(admin(f, &c), NVEMU_SC_GENERIC(NVME_SC_PRP_INVALID_OFFSET));
	/* SGL on the admin queue */
	c.flags = 1u << 6;
	c.dptr1 = DATA;
	assert_status(admin(f, &c), NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	/* DMA outside guest memory */
	c.flags = 0;
	c.dptr1 = MEM_SIZE;
	assert_status(admin(f, &c), NVEMU_SC_GENERIC(NVME_SC_DATA_XFER_ERROR));
}

static void test_phase_wrap(void **state)
{
	struct fx *f = *state;

	enable_depth(f, 4);
	for (unsigned i = 0; i < 11; i++) {
		struct nvemu_sqe c = {.opc = nvme_admin_get_features,
				      .cdw10 = NVME_FEAT_FID_ARBITRATION};
		struct nvemu_cqe cqe;
		bool want_phase = f->phase[0];

		assert_success(run(f, 0, &c, &cqe));
		assert_int_equal(cqe.status & 1, want_phase);
	}
	assert_int_equal(f->head[0], 11 % 4);
	/* several commands at once: all posted, in order */
	for (unsigned i = 0; i < 3; i++) {
		struct nvemu_sqe c = {.opc = nvme_admin_get_features,
				      .cdw10 = NVME_FEAT_FID_ARBITRATION};

		c.cid = ++f->cid;
		memcpy(f->mem + ASQ + (uint64_t)f->tail[0] * 64, &c, 64);
		f->tail[0] = (f->tail[0] + 1) % 4;
	}
	db_sq(f, 0, f->tail[0]);
	for (unsigned i = 0; i < 3; i++) {
		struct nvemu_cqe cqe;

		assert_true(reap(f, 0, &cqe));
		assert_int_equal(cqe.cid, f->cid - 2 + i);
	}
}

static void test_cq_full_backlog(void **state)
{
	struct fx *f = *state;
	struct nvemu_pcie_queue_debug d;
	struct nvemu_cqe cqe;

	enable_depth(f, 4); /* the CQ holds 3 */
	for (unsigned i = 0; i < 3; i++) {
		struct nvemu_sqe c = {.opc = nvme_admin_get_features,
				      .cdw10 = NVME_FEAT_FID_ARBITRATION};

		submit(f, 0, &c);
	}
	/* 3 posted without the host consuming; now one more waits for space */
	struct nvemu_sqe c = {.opc = nvme_admin_keep_alive};

	submit(f, 0, &c);
	assert_int_equal(nvemu_pcie_ctrl_debug(f->pc, 0, &d), 0);
	assert_int_equal(d.cq_backlog, 1);
	assert_int_equal(d.device_cq_tail, 3);
	for (unsigned i = 0; i < 4; i++)
		assert_true(reap(f, 0, &cqe));
	assert_int_equal(cqe.cid, c.cid);
	assert_false(reap_nodb(f, 0, &cqe));
	assert_int_equal(nvemu_pcie_ctrl_debug(f->pc, 0, &d), 0);
	assert_int_equal(d.cq_backlog, 0);
	assert_int_equal(d.driver_sq_tail, f->tail[0]);
	assert_int_equal(d.device_sq_head, f->tail[0]);
}

static void test_create_queue_errors(void **state)
{
	struct fx *f = *state;
	const uint16_t qid_invalid = NVEMU_SC_CMD(NVME_SC_QID_INVALID);

	enable(f);
	assert_status(create_cq(f, 0, IOCQ, 16, 1, 3), qid_invalid);
	assert_status(create_cq(f, NQ + 1, IOCQ, 16, 1, 3), qid_invalid);
	assert_status(create_cq(f, 1, IOCQ, 1, 1, 3), NVEMU_SC_CMD(NVME_SC_QUEUE_SIZE));
	assert_status(create_cq(f, 1, IOCQ, 1025, 1, 3), NVEMU_SC_CMD(NVME_SC_QUEUE_SIZE));
	assert_status(create_cq(f, 1, IOCQ, 16, 1, 2), NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	assert_status(create_cq(f, 1, IOCQ + 0x100, 16, 1, 3),
		      NVEMU_SC_GENERIC(NVME_SC_PRP_INVALID_OFFSET));
	assert_status(create_cq(f, 1, IOCQ, 16, NQ + 1, 3), NVEMU_SC_CMD(NVME_SC_INVALID_VECTOR));
	assert_success(create_cq(f, 1, IOCQ, 16, 1, 3));
	assert_status(create_cq(f, 1, IOCQ, 16, 1, 3), qid_invalid);

	assert_status(create_sq(f, 1, IOSQ, 16, 0, 1), NVEMU_SC_CMD(NVME_SC_CQ_INVALID));
	assert_status(create_sq(f, 1, IOSQ, 16, 2, 1), NVEMU_SC_CMD(NVME_SC_CQ_INVALID));
	assert_status(create_sq(f, 0, IOSQ, 16, 1, 1), qid_invalid);
	assert_status(create_sq(f, NQ + 1, IOSQ, 16, 1, 1), qid_invalid);
	assert_status(create_sq(f, 1, IOSQ, 4096, 1, 1), NVEMU_SC_CMD(NVME_SC_QUEUE_SIZE));
	assert_status(create_sq(f, 1, IOSQ, 16, 1, 0), NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	assert_status(create_sq(f, 1, IOSQ + 8, 16, 1, 1),
		      NVEMU_SC_GENERIC(NVME_SC_PRP_INVALID_OFFSET));
	assert_success(create_sq(f, 1, IOSQ, 16, 1, 1));
	assert_status(create_sq(f, 1, IOSQ, 16, 1, 1), qid_invalid);

	struct nvemu_sqe c = {.opc = nvme_admin_delete_cq, .cdw10 = 1};

	assert_status(admin(f, &c), NVEMU_SC_CMD(NVME_SC_INVALID_QUEUE));
	c.opc = nvme_admin_delete_sq;
	c.cdw10 = 2;
	assert_status(admin(f, &c), qid_invalid);
	c.cdw10 = 0;
	assert_status(admin(f, &c), qid_invalid);
	c.cdw10 = 1;
	assert_success(admin(f, &c));
	c.opc = nvme_admin_delete_cq;
	assert_success(admin(f, &c));
	assert_status(admin(f, &c), qid_invalid);
	/* the doorbell of a deleted queue is an invalid doorbell now */
	struct nvemu_pcie_queue_debug d;

	assert_int_equal(nvemu_pcie_ctrl_debug(f->pc, 1, &d), 0);
	assert_false(d.sq_valid || d.cq_valid);
	db_sq(f, 1, 1);
	assert_int_equal(nvemu_pcie_ctrl_debug(f->pc, 1, &d), 0);
	assert_int_equal(d.doorbell_errors, 1);
}

/* ---- data pointers */

static void check_rw(struct fx *f, uint64_t src, uint32_t len)
{
	/* Read back with a contiguous PRP list into DATA2 and compare. */
	uint32_t pages = len / 4096;

	memset(f->mem + DATA2, 0, len);
	for (uint32_t i = 1; i < pages; i++)
		put64(f, LISTS + 0x10000 + 8ull * (i - 1), DATA2 + 4096ull * i);
	assert_success(rw(f, nvme_cmd_read, 0, len / 512, 0, DATA2,
			  pages > 2 ? LISTS + 0x10000 : DATA2 + 4096));
	assert_memory_equal(f->mem + DATA2, f->mem + src, len);
}

static void test_prp_simple(void **state)
{
	struct fx *f = *state;

	enable(f);
	io_pair(f);
	/* PRP1 only, at an offset */
	fill(f, DATA + 0x200, 512, 3);
	assert_success(rw(f, nvme_cmd_write, 10, 1, 0, DATA + 0x200, 0xdeadbeef));
	memset(f->mem + DATA2 + 0x40, 0, 512);
	assert_success(rw(f, nvme_cmd_read, 10, 1, 0, DATA2 + 0x40, 0));
	assert_memory_equal(f->mem + DATA2 + 0x40, f->mem + DATA + 0x200, 512);
	/* PRP1 + PRP2: 8 KiB, two non-adjacent pages */
	fill(f, DATA, 4096, 5);
	fill(f, DATA + 0x10000, 4096, 6);
	assert_success(rw(f, nvme_cmd_write, 0, 16, 0, DATA, DATA + 0x10000));
	memset(f->mem + DATA2, 0, 8192);
	assert_success(rw(f, nvme_cmd_read, 0, 16, 0, DATA2 + 0x8000, DATA2));
	assert_memory_equal(f->mem + DATA2 + 0x8000, f->mem + DATA, 4096);
	assert_memory_equal(f->mem + DATA2, f->mem + DATA + 0x10000, 4096);
	/* offset PRP1 spanning into PRP2 */
	fill(f, DATA + 0xe00, 0x200, 8);
	fill(f, DATA + 0x20000, 0xe00, 9);
	assert_success(rw(f, nvme_cmd_write, 100, 8, 0, DATA + 0xe00, DATA + 0x20000));
	memset(f->mem + DATA2, 0, 4096);
	assert_success(rw(f, nvme_cmd_read, 100, 8, 0, DATA2, 0));
	assert_memory_equal(f->mem + DATA2, f->mem + DATA + 0xe00, 0x200);
	assert_memory_equal(f->mem + DATA2 + 0x200, f->mem + DATA + 0x20000, 0xe00);
}

static void test_prp_list(void **state)
{
	struct fx *f = *state;
	uint8_t *expect = malloc(65536);
	uint32_t off = 0;

	assert_non_null(expect);
	enable(f);
	io_pair(f);
	/* 64 KiB: PRP1 at offset 0x100 + 16 scattered pages via a list at offset 0x40 */
	fill(f, DATA + 0x100, 4096 - 0x100, 1);
	memcpy(expect, f->mem + DATA + 0x100, 4096 - 0x100);
	off = 4096 - 0x100;
	for (unsigned i = 0; i < 16; i++) {
		uint64_t page = DATA + 0x2000 + 0x2000ull * i; /* every other page */
		uint32_t n = 65536 - off < 4096 ? 65536 - off : 4096;

		fill(f, page, n, (uint8_t)(i + 10));
		memcpy(expect + off, f->mem + page, n);
		put64(f, LISTS + 0x40 + 8ull * i, page);
		off += n;
	}
	assert_int_equal(off, 65536);
	assert_success(rw(f, nvme_cmd_write, 0, 128, 0, DATA + 0x100, LISTS + 0x40));
	memcpy(f->mem + DATA2 + 0x100000, expect, 65536);
	check_rw(f, DATA2 + 0x100000, 65536);

	/* a list whose page holds one entry + the chain pointer */
	put64(f, LISTS + 0x1000 + 4096 - 16, DATA + 0x2000);
	put64(f, LISTS + 0x1000 + 4096 - 8, LISTS + 0x3000);
	for (unsigned i = 1; i < 16; i++)
		put64(f, LISTS + 0x3000 + 8ull * (i - 1), DATA + 0x2000 + 0x2000ull * i);
	memset(f->mem + DATA2, 0, 65536);
	assert_success(rw(f, nvme_cmd_read, 0, 128, 0, DATA + 0x100, LISTS + 0x1000 + 4096 - 16));
	/* read back into the same scattered pages: they must hold what was written */
	assert_memory_equal(f->mem + DATA + 0x100, expect, 4096 - 0x100);
	assert_memory_equal(f->mem + DATA + 0x2000 + 0x2000 * 15, expect + 65536 - 0x100, 0x100);
	free(expect);
}

static void test_prp_invalid(void **state)
{
	struct fx *f = *state;
	const uint16_t bad = NVEMU_SC_GENERIC(NVME_SC_PRP_INVALID_OFFSET);

	enable(f);
	io_pair(f);
	/* PRP1 not dword aligned */
	assert_status(rw(f, nvme_cmd_write, 0, 1, 0, DATA + 2, 0), bad);
	/* PRP2 as a data pointer with an offset */
	assert_status(rw(f, nvme_cmd_write, 0, 16, 0, DATA, DATA2 + 0x200), bad);
	/* PRP list pointer not qword aligned */
	assert_status(rw(f, nvme_cmd_write, 0, 32, 0, DATA, LISTS + 4), bad);
	/* a list entry with an offset */
	put64(f, LISTS, DATA + 0x1000);
	put64(f, LISTS + 8, DATA + 0x2010);
	put64(f, LISTS + 16, DATA + 0x3000);
	assert_status(rw(f, nvme_cmd_write, 0, 32, 0, DATA, LISTS), bad);
	/* a chain pointer with an offset */
	put64(f, LISTS + 0x1000 + 4096 - 16, DATA + 0x1000);
	put64(f, LISTS + 0x1000 + 4096 - 8, LISTS + 0x3008);
	assert_status(rw(f, nvme_cmd_write, 0, 32, 0, DATA, LISTS + 0x1000 + 4096 - 16), bad);
	/* a list outside guest memory */
	assert_status(rw(f, nvme_cmd_write, 0, 32, 0, DATA, MEM_SIZE),
		      NVEMU_SC_GENERIC(NVME_SC_DATA_XFER_ERROR));
	/* PSDT reserved */
	assert_status(rw(f, nvme_cmd_write, 0, 1, 3, DATA, 0),
		      NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	/* errors are logged and DNR is set */
	assert_true(rw(f, nvme_cmd_write, 0, 1, 0, DATA + 1, 0) & NVME_SC_DNR);
	assert_true(f->ctrl->err_count >= 8);
}

static void test_mdts(void **state)
{
	struct fx *f = *state;

	enable(f);
	io_pair(f);
	for (unsigned i = 0; i < 31; i++)
		put64(f, LISTS + 8ull * i, DATA + 0x1000 + 0x1000ull * i);
	assert_success(rw(f, nvme_cmd_write, 0, 256, 0, DATA, LISTS)); /* 128 KiB = MDTS */
	assert_status(rw(f, nvme_cmd_write, 0, 257, 0, DATA, LISTS),
		      NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	assert_status(rw(f, nvme_cmd_read, 0, 1024, 0, DATA, LISTS),
		      NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	/* a Get Log Page larger than MDTS */
	struct nvemu_sqe c = {
		.opc = nvme_admin_get_log_page, .nsid = 0xffffffff, .dptr1 = DATA, .dptr2 = LISTS};

	c.cdw10 = NVME_LOG_LID_ERROR | ((128u * 1024 / 4) << 16); /* 128 KiB + 4 */
	assert_status(admin(f, &c), NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
}

static void test_sgl(void **state)
{
	struct fx *f = *state;
	uint64_t d1, d2;

	enable(f);
	io_pair(f);
	/* one Data Block in the SQE, at an odd address */
	fill(f, DATA + 3, 1024, 21);
	sqe_sgl(&d1, &d2, DATA + 3, 1024, T_DATA);
	assert_success(rw(f, nvme_cmd_write, 0, 2, 1, d1, d2));
	memset(f->mem + DATA2, 0, 1024);
	assert_success(rw(f, nvme_cmd_read, 0, 2, 0, DATA2, 0));
	assert_memory_equal(f->mem + DATA2, f->mem + DATA + 3, 1024);

	/* Last Segment of three Data Blocks */
	sgl(f, LISTS, DATA2 + 0x1000, 100, T_DATA);
	sgl(f, LISTS + 16, DATA2 + 0x3000, 900, T_DATA);
	sgl(f, LISTS + 32, DATA2 + 0x5001, 24, T_DATA);
	memset(f->mem + DATA2, 0, 0x6000);
	sqe_sgl(&d1, &d2, LISTS, 48, T_LAST);
	assert_success(rw(f, nvme_cmd_read, 0, 2, 1, d1, d2));
	assert_memory_equal(f->mem + DATA2 + 0x1000, f->mem + DATA + 3, 100);
	assert_memory_equal(f->mem + DATA2 + 0x3000, f->mem + DATA + 3 + 100, 900);
	assert_memory_equal(f->mem + DATA2 + 0x5001, f->mem + DATA + 3 + 1000, 24);

	/* Segment -> Segment -> Last Segment, with a Bit Bucket on read */
	sgl(f, LISTS + 0x100, DATA2 + 0x7000, 512, T_DATA);
	sgl(f, LISTS + 0x110, LISTS + 0x200, 32, T_SEG);
	sgl(f, LISTS + 0x200, 0, 256, T_BUCKET);
	sgl(f, LISTS + 0x210, LISTS + 0x300, 16, T_LAST);
	sgl(f, LISTS + 0x300, DATA2 + 0x9000, 256, T_DATA);
	memset(f->mem + DATA2 + 0x7000, 0, 0x3000);
	sqe_sgl(&d1, &d2, LISTS + 0x100, 32, T_SEG);
	assert_success(rw(f, nvme_cmd_read, 0, 2, 1, d1, d2));
	assert_memory_equal(f->mem + DATA2 + 0x7000, f->mem + DATA + 3, 512);
	assert_memory_equal(f->mem + DATA2 + 0x9000, f->mem + DATA + 3 + 768, 256);
	assert_int_equal(f->mem[0], 0); /* the bucket went nowhere */

	/* Bit Buckets in a write are ignored */
	fill(f, DATA + 0x10000, 512, 77);
	sgl(f, LISTS + 0x400, 0, 4096, T_BUCKET);
	sgl(f, LISTS + 0x410, DATA + 0x10000, 512, T_DATA);
	sqe_sgl(&d1, &d2, LISTS + 0x400, 32, T_LAST);
	assert_success(rw(f, nvme_cmd_write, 5, 1, 2, d1, d2)); /* PSDT 10b works too */
	memset(f->mem + DATA2, 0, 512);
	assert_success(rw(f, nvme_cmd_read, 5, 1, 0, DATA2, 0));
	assert_memory_equal(f->mem + DATA2, f->mem + DATA + 0x10000, 512);
}

/* SNAP quirk bit 4: no SGLs. SGLS reads 0 and an I/O with PSDT != 0 is refused; PRPs still work. */
static void test_quirk_no_sgl(void **state)
{
	struct fx *f = *state;
	struct nvemu_sqe c = {
		.opc = nvme_admin_identify, .dptr1 = DATA, .cdw10 = NVME_IDENTIFY_CNS_CTRL};
	struct nvemu_error err = {0};
	struct nvme_id_ctrl id;
	uint64_t d1, d2;

	enable(f);
	io_pair(f);
	sqe_sgl(&d1, &d2, DATA, 512, T_DATA);
	assert_success(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2)); /* SGLs by default */
	assert_int_equal(nvemu_ctrl_set_quirks(f->ctrl, NVEMU_QUIRK_NO_SGL, &err), 0);
	assert_success(admin(f, &c));
	memcpy(&id, f->mem + DATA, sizeof(id));
	assert_int_equal(le32toh(id.sgls), 0);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2),
		      NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	assert_status(rw(f, nvme_cmd_read, 0, 1, 2, d1, d2),
		      NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	assert_success(rw(f, nvme_cmd_read, 0, 1, 0, DATA2, 0));
	/* Taken back at run time: SGLs again. */
	assert_int_equal(nvemu_ctrl_set_quirks(f->ctrl, 0, &err), 0);
	assert_success(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2));
}

static void test_sgl_invalid(void **state)
{
	struct fx *f = *state;
	const uint16_t len_bad = NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_DATA);
	const uint16_t type_bad = NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_TYPE);
	const uint16_t seg_bad = NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_LAST);
	uint64_t d1, d2;

	enable(f);
	io_pair(f);
	sqe_sgl(&d1, &d2, DATA, 512, 0xf0);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2), type_bad);
	sqe_sgl(&d1, &d2, DATA, 512, 0x40); /* keyed: not on PCIe */
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2), type_bad);
	sqe_sgl(&d1, &d2, DATA, 512, T_DATA | 1); /* offset subtype */
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2), type_bad);
	sqe_sgl(&d1, &d2, DATA, 511, T_DATA);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2), len_bad);
	sqe_sgl(&d1, &d2, DATA, 513, T_DATA);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2), len_bad);
	/* segment lengths */
	sgl(f, LISTS, DATA, 512, T_DATA);
	sqe_sgl(&d1, &d2, LISTS, 0, T_LAST);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2), seg_bad);
	sqe_sgl(&d1, &d2, LISTS, 24, T_LAST);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2), seg_bad);
	/* a Last Segment that chains on */
	sgl(f, LISTS + 0x100, LISTS, 16, T_SEG);
	sqe_sgl(&d1, &d2, LISTS + 0x100, 16, T_LAST);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2), seg_bad);
	/* a Segment descriptor that is not the last of its segment */
	sgl(f, LISTS + 0x200, LISTS, 16, T_LAST);
	sgl(f, LISTS + 0x210, DATA, 512, T_DATA);
	sqe_sgl(&d1, &d2, LISTS + 0x200, 32, T_SEG);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2), seg_bad);
	/* a Segment that ends without chaining */
	sqe_sgl(&d1, &d2, LISTS, 16, T_SEG);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2), seg_bad);
	/* a descriptor of a reserved type inside a segment */
	sgl(f, LISTS + 0x300, DATA, 512, 0x70);
	sqe_sgl(&d1, &d2, LISTS + 0x300, 16, T_LAST);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2), type_bad);
	/* descriptors describing too little / too much in total */
	sgl(f, LISTS + 0x400, DATA, 256, T_DATA);
	sgl(f, LISTS + 0x410, DATA + 0x1000, 128, T_DATA);
	sqe_sgl(&d1, &d2, LISTS + 0x400, 32, T_LAST);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2), len_bad);
	sgl(f, LISTS + 0x410, DATA + 0x1000, 512, T_DATA);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2), len_bad);
	/* a segment that points to itself runs into the descriptor limit */
	sgl(f, LISTS + 0x500, LISTS + 0x500, 16, T_SEG);
	sqe_sgl(&d1, &d2, LISTS + 0x500, 16, T_SEG);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2),
		      NVEMU_SC_GENERIC(NVME_SC_SGL_INVALID_COUNT));
	/* a segment outside guest memory */
	sqe_sgl(&d1, &d2, MEM_SIZE, 16, T_LAST);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2),
		      NVEMU_SC_GENERIC(NVME_SC_DATA_XFER_ERROR));
	/* a data block outside guest memory */
	sqe_sgl(&d1, &d2, MEM_SIZE - 256, 512, T_DATA);
	assert_status(rw(f, nvme_cmd_write, 0, 1, 1, d1, d2),
		      NVEMU_SC_GENERIC(NVME_SC_DATA_XFER_ERROR));
}

/* ---- doorbells and asynchronous events */

static void test_doorbell_errors(void **state)
{
	struct fx *f = *state;
	struct nvemu_sqe aer = {.opc = nvme_admin_async_event};
	struct nvemu_sqe log = {.opc = nvme_admin_get_log_page, .nsid = 0xffffffff, .dptr1 = DATA};
	struct nvemu_cqe cqe;

	log.cdw10 = NVME_LOG_LID_ERROR | (63u << 16);
	enable(f);
	io_pair(f);
	submit(f, 0, &aer);
	assert_false(reap_nodb(f, 0, &cqe));
	/* a doorbell of a queue that does not exist */
	db_sq(f, 3, 1);
	assert_true(reap(f, 0, &cqe));
	assert_int_equal(cqe.cid, aer.cid);
	assert_success(cqe_status(&cqe));
	assert_int_equal(le32toh(cqe.dw0), NVME_AER_ERROR | NVME_AER_ERROR_INVALID_DB_REG << 8 |
						   NVME_LOG_LID_ERROR << 16);
	assert_success(admin(f, &log));
	/* a tail beyond the queue */
	submit(f, 0, &aer);
	db_sq(f, 1, QDEPTH);
	assert_true(reap(f, 0, &cqe));
	assert_int_equal(le32toh(cqe.dw0), NVME_AER_ERROR | NVME_AER_ERROR_INVALID_DB_VAL << 8 |
						   NVME_LOG_LID_ERROR << 16);
	assert_success(admin(f, &log));
	/* a CQ head past the entries posted */
	submit(f, 0, &aer);
	db_cq(f, 1, 5);
	assert_true(reap(f, 0, &cqe));
	assert_int_equal((le32toh(cqe.dw0) >> 8) & 0xff, NVME_AER_ERROR_INVALID_DB_VAL);
	assert_success(admin(f, &log));
	/* doorbells beyond the implemented queues, and misaligned ones */
	submit(f, 0, &aer);
	w32(f, 0x1000 + 8 * 100 + 4, 0);
	assert_true(reap(f, 0, &cqe));
	nvemu_pcie_bar0_write(f->pc, 0x1002, 2, 1); /* ignored */
	struct nvemu_pcie_queue_debug d;

	assert_int_equal(nvemu_pcie_ctrl_debug(f->pc, 1, &d), 0);
	assert_int_equal(d.doorbell_errors, 4);
	/* the queues still work */
	fill(f, DATA, 512, 1);
	assert_success(rw(f, nvme_cmd_write, 0, 1, 0, DATA, 0));
}

/* ---- interrupts */

static uint32_t msix_ctl_off(uint16_t v)
{
	return NVEMU_PCIE_MSIX_TABLE_OFF + 16u * v + 12;
}

static void test_msix(void **state)
{
	struct fx *f = *state;
	struct nvemu_pcie_ctrl *pc = f->pc;

	/* enable MSI-X; vectors start masked */
	nvemu_pcie_cfg_write(pc, NVEMU_PCIE_CAP_MSIX + 2, 2, 1u << 15);
	assert_true(nvemu_pcie_msix_enabled(pc));
	assert_int_equal(r32(f, msix_ctl_off(1)), 1);
	w32(f, NVEMU_PCIE_MSIX_TABLE_OFF + 16, 0xfee00000);
	w32(f, NVEMU_PCIE_MSIX_TABLE_OFF + 24, 0x4021);
	assert_int_equal(r32(f, NVEMU_PCIE_MSIX_TABLE_OFF + 16), 0xfee00000);
	assert_int_equal(r32(f, NVEMU_PCIE_MSIX_TABLE_OFF + 24), 0x4021);
	w32(f, msix_ctl_off(0), 0);
	w32(f, msix_ctl_off(1), 0);
	enable(f);
	io_pair(f);
	assert_int_equal(f->msix[0], 2);
	fill(f, DATA, 512, 1);
	assert_success(rw(f, nvme_cmd_write, 0, 1, 0, DATA, 0));
	assert_int_equal(f->msix[1], 1);
	/* masked: pending bit instead of a message, delivered on unmask */
	w32(f, msix_ctl_off(1), 1);
	assert_success(rw(f, nvme_cmd_write, 0, 1, 0, DATA, 0));
	assert_int_equal(f->msix[1], 1);
	assert_int_equal(r32(f, NVEMU_PCIE_MSIX_PBA_OFF), 1u << 1);
	w32(f, msix_ctl_off(1), 0);
	assert_int_equal(f->msix[1], 2);
	assert_int_equal(r32(f, NVEMU_PCIE_MSIX_PBA_OFF), 0);
	/* function mask */
	nvemu_pcie_cfg_write(pc, NVEMU_PCIE_CAP_MSIX + 2, 2, 3u << 14);
	assert_success(rw(f, nvme_cmd_write, 0, 1, 0, DATA, 0));
	assert_int_equal(f->msix[1], 2);
	assert_int_equal(r32(f, NVEMU_PCIE_MSIX_PBA_OFF), 1u << 1);
	w32(f, NVEMU_PCIE_MSIX_PBA_OFF, 0); /* read-only */
	assert_int_equal(r32(f, NVEMU_PCIE_MSIX_PBA_OFF), 1u << 1);
	nvemu_pcie_cfg_write(pc, NVEMU_PCIE_CAP_MSIX + 2, 2, 1u << 15);
	assert_int_equal(f->msix[1], 3);
	/* a CQ without IEN raises nothing */
	assert_success(create_cq(f, 2, IOCQ + 0x10000, 16, 2, 1));
	assert_success(create_sq(f, 2, IOSQ + 0x10000, 16, 2, 1));
	f->size[2] = 16;
	f->sqbase[2] = IOSQ + 0x10000;
	f->cqbase[2] = IOCQ + 0x10000;
	f->phase[2] = true;
	struct nvemu_sqe c = {.opc = nvme_cmd_flush, .nsid = 1};
	unsigned before = f->msix[2];

	assert_success(run(f, 2, &c, NULL));
	assert_int_equal(f->msix[2], before);
	assert_false(f->intx);
	/* external masking (vfio-user style) ignores the table */
	nvemu_pcie_msix_ext_enable(pc, true);
	w32(f, msix_ctl_off(1), 1);
	assert_success(rw(f, nvme_cmd_write, 0, 1, 0, DATA, 0));
	assert_int_equal(f->msix[1], 4);
	nvemu_pcie_msix_ext_mask(pc, 1, true);
	assert_success(rw(f, nvme_cmd_write, 0, 1, 0, DATA, 0));
	assert_int_equal(f->msix[1], 4);
	nvemu_pcie_msix_ext_mask(pc, 1, false);
	assert_int_equal(f->msix[1], 5);
	struct nvemu_pcie_queue_debug d;

	assert_int_equal(nvemu_pcie_ctrl_debug(pc, 1, &d), 0);
	assert_int_equal(d.interrupts, 5);
}

static void test_intx(void **state)
{
	struct fx *f = *state;
	struct nvemu_sqe c = {.opc = nvme_admin_get_features, .cdw10 = NVME_FEAT_FID_ARBITRATION};
	struct nvemu_cqe cqe;

	assert_false(nvemu_pcie_msix_enabled(f->pc));
	enable(f);
	submit(f, 0, &c);
	assert_true(f->intx);
	assert_true(nvemu_pcie_intx_level(f->pc));
	assert_true(nvemu_pcie_cfg_read(f->pc, 0x06, 2) & (1u << 3));
	/* INTMS masks the line while the entry is unconsumed */
	w32(f, NVEMU_REG_INTMS, 1);
	assert_false(f->intx);
	w32(f, NVEMU_REG_INTMC, 1);
	assert_true(f->intx);
	/* Command.INTx Disable */
	nvemu_pcie_cfg_write(f->pc, 0x04, 2, 0x0406);
	assert_false(f->intx);
	assert_false(nvemu_pcie_cfg_read(f->pc, 0x06, 2) & (1u << 3));
	nvemu_pcie_cfg_write(f->pc, 0x04, 2, 0x0006);
	assert_true(f->intx);
	/* consuming the entry drops the level */
	assert_true(reap(f, 0, &cqe));
	assert_false(f->intx);
	assert_int_equal(f->intx_asserts, 3);
	/* MSI-X on: INTx stays quiet */
	nvemu_pcie_cfg_write(f->pc, NVEMU_PCIE_CAP_MSIX + 2, 2, 1u << 15);
	submit(f, 0, &c);
	assert_false(f->intx);
	assert_true(reap(f, 0, &cqe));
}

static void test_coalescing(void **state)
{
	struct fx *f = *state;
	struct nvemu_sqe c = {.opc = nvme_admin_set_features, .cdw10 = NVME_FEAT_FID_IRQ_COALESCE};
	uint64_t t0;

	nvemu_pcie_cfg_write(f->pc, NVEMU_PCIE_CAP_MSIX + 2, 2, 1u << 15);
	for (uint16_t v = 0; v <= NQ; v++)
		w32(f, msix_ctl_off(v), 0);
	enable(f);
	io_pair(f);
	c.cdw11 = 3 | 20u << 8; /* 4 entries or 2 ms */
	assert_success(admin(f, &c));
	unsigned admin_irqs = f->msix[0];

	fill(f, DATA, 512, 1);
	for (unsigned i = 0; i < 3; i++)
		assert_success(rw(f, nvme_cmd_write, 0, 1, 0, DATA, 0));
	assert_int_equal(f->msix[1], 0);
	assert_true(nvemu_pcie_ctrl_poll_interval_us(f->pc) > 0);
	assert_success(rw(f, nvme_cmd_write, 0, 1, 0, DATA, 0));
	assert_int_equal(f->msix[1], 1);
	assert_int_equal(nvemu_pcie_ctrl_poll_interval_us(f->pc), 0);
	/* the time limit */
	assert_success(rw(f, nvme_cmd_write, 0, 1, 0, DATA, 0));
	assert_int_equal(f->msix[1], 1);
	t0 = nvemu_now_ns();
	while (f->msix[1] == 1 && nvemu_now_ns() - t0 < 1000000000ull)
		nvemu_pcie_ctrl_poll(f->pc);
	assert_int_equal(f->msix[1], 2);
	assert_true(nvemu_now_ns() - t0 >= 1000000ull);
	/* the admin queue is never coalesced */
	struct nvemu_sqe g = {.opc = nvme_admin_get_features, .cdw10 = NVME_FEAT_FID_ARBITRATION};

	assert_success(admin(f, &g));
	assert_int_equal(f->msix[0], admin_irqs + 1);
	/* Interrupt Vector Configuration: CD turns it off for vector 1 */
	c.cdw10 = NVME_FEAT_FID_IRQ_CONFIG;
	c.cdw11 = 1 | 1u << 16;
	assert_success(admin(f, &c));
	assert_success(rw(f, nvme_cmd_write, 0, 1, 0, DATA, 0));
	assert_int_equal(f->msix[1], 3);
}

/* ---- reset with commands in flight */

static void test_reset_inflight(void **state)
{
	struct fx *f = *state;
	struct nvemu_pcie_queue_debug d;
	struct nvemu_cqe cqe;
	uint8_t cq_before[64 * 16];

	enable(f);
	io_pair(f);
	fill(f, DATA, 512, 1);
	/* hold I/O in the engine (suspend), then reset the controller */
	nvemu_ctrl_suspend(f->ctrl, false);
	for (unsigned i = 0; i < 3; i++) {
		struct nvemu_sqe c = {.opc = nvme_cmd_write, .nsid = 1, .dptr1 = DATA};

		submit(f, 1, &c);
	}
	assert_int_equal(nvemu_pcie_ctrl_debug(f->pc, 1, &d), 0);
	assert_int_equal(d.sq_inflight, 3);
	assert_false(reap_nodb(f, 1, &cqe));
	memcpy(cq_before, f->mem + IOCQ, sizeof(cq_before));
	w32(f, NVEMU_REG_CC, 0);
	assert_int_equal(csts(f) & RDY, 0);
	/* the held commands come back after the reset: nothing reaches the old CQ */
	nvemu_ctrl_resume(f->ctrl);
	assert_memory_equal(cq_before, f->mem + IOCQ, sizeof(cq_before));
	assert_int_equal(nvemu_ctrl_inflight(f->ctrl), 0);
	/* the controller comes back */
	memset(f->mem + ACQ, 0, 4096);
	memset(f->mem + IOCQ, 0, 4096);
	f->cid = 0;
	enable(f);
	io_pair(f);
	assert_success(rw(f, nvme_cmd_write, 0, 1, 0, DATA, 0));
	/* I/O held by a suspend completes normally after resume */
	nvemu_ctrl_suspend(f->ctrl, false);
	struct nvemu_sqe c = {.opc = nvme_cmd_write, .nsid = 1, .dptr1 = DATA};

	submit(f, 1, &c);
	nvemu_ctrl_resume(f->ctrl);
	assert_true(reap(f, 1, &cqe));
	assert_success(cqe_status(&cqe));
	/* FLR brings configuration space back too */
	nvemu_pcie_cfg_write(f->pc, 0x04, 2, 0x0006);
	nvemu_pcie_cfg_write(f->pc, NVEMU_PCIE_CAP_EXP + 8, 2, 1u << 15);
	assert_int_equal(csts(f) & RDY, 0);
	assert_int_equal(nvemu_pcie_cfg_read(f->pc, 0x04, 2), 0);
	assert_int_equal(r32(f, msix_ctl_off(1)), 1);
}

/* ---- a backend that completes only when told to (commands stay in flight) */

struct slow_bdev {
	struct nvemu_bdev bdev;
	struct nvemu_bio *pending[8];
	unsigned n;
	unsigned polls_left; /* complete everything after this many polls */
};

static int slow_submit(struct nvemu_bdev *b, struct nvemu_bio *bio)
{
	struct slow_bdev *sb = (struct slow_bdev *)b;

	if (sb->n == 8)
		return -EAGAIN;
	sb->pending[sb->n++] = bio;
	return 0;
}

static int slow_poll(struct nvemu_bdev *b)
{
	struct slow_bdev *sb = (struct slow_bdev *)b;
	unsigned n = sb->n;

	/* held while priv is NULL, then for polls_left more polls */
	if (!n || !b->priv || (sb->polls_left && --sb->polls_left))
		return 0;
	sb->n = 0;
	for (unsigned i = 0; i < n; i++)
		sb->pending[i]->end_io(sb->pending[i], 0);
	return (int)n;
}

static unsigned slow_inflight(struct nvemu_bdev *b)
{
	return ((struct slow_bdev *)b)->n;
}

static const struct nvemu_bdev_ops slow_ops = {
	.type = "slow",
	.submit = slow_submit,
	.poll = slow_poll,
	.inflight = slow_inflight,
};

static void test_inflight_delete_reset(void **state)
{
	struct fx *f = *state;
	struct slow_bdev sb = {.polls_left = 3};
	struct nvemu_ns_params np;
	struct nvemu_error err = {0};
	struct nvemu_sqe w = {.opc = nvme_cmd_write, .nsid = 2, .dptr1 = DATA};
	struct nvemu_sqe del = {.opc = nvme_admin_delete_sq, .cdw10 = 1};
	struct nvemu_cqe cqe;
	uint32_t nsid;

	assert_int_equal(nvemu_bdev_init(&sb.bdev, &slow_ops, "slow0", 1 << 20, 512, &err), 0);
	nvemu_ns_params_init(&np);
	np.nsid = 2;
	np.bdev = &sb.bdev;
	assert_int_equal(nvemu_subsys_add_ns_ex(f->subsys, &np, &nsid, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(f->ctrl, 2, &err), 0);
	enable(f);
	io_pair(f);

	/* Delete SQ waits for a command the backend finishes meanwhile */
	sb.bdev.priv = &sb;
	submit(f, 1, &w);
	assert_false(reap_nodb(f, 1, &cqe));
	assert_success(admin(f, &del));
	assert_true(reap(f, 1, &cqe));
	assert_int_equal(cqe.cid, w.cid);
	assert_success(cqe_status(&cqe));

	/* ... and when it does not finish in time, the command completes later, aborted */
	assert_success(create_sq(f, 1, IOSQ, QDEPTH, 1, 1));
	f->tail[1] = 0;
	sb.bdev.priv = NULL;
	sb.polls_left = 0;
	submit(f, 1, &w);
	assert_success(admin(f, &del));
	assert_false(reap_nodb(f, 1, &cqe));
	sb.bdev.priv = &sb;
	nvemu_subsys_poll(f->subsys);
	assert_true(reap(f, 1, &cqe));
	assert_int_equal(cqe.cid, w.cid);
	assert_status(cqe_status(&cqe), NVEMU_SC_GENERIC(NVME_SC_ABORT_QUEUE));

	/* controller reset with a command stuck in the backend: its completion is dropped */
	assert_success(create_sq(f, 1, IOSQ, QDEPTH, 1, 1));
	f->tail[1] = 0;
	sb.bdev.priv = NULL;
	submit(f, 1, &w);
	w32(f, NVEMU_REG_CC, 0);
	assert_int_equal(csts(f) & RDY, 0);
	uint8_t before[4096];

	memcpy(before, f->mem + IOCQ, sizeof(before));
	sb.bdev.priv = &sb;
	nvemu_subsys_poll(f->subsys);
	assert_memory_equal(before, f->mem + IOCQ, sizeof(before));
	assert_int_equal(sb.n, 0);
	nvemu_ctrl_detach_ns(f->ctrl, 2, &err);
	nvemu_subsys_remove_ns(f->subsys, 2, &err);
}

/* Queues served through DMA only (no mapped guest memory). */
static void test_dma_path(void **state)
{
	struct fx *f = *state;

	assert_false(f->use_map);
	test_identify(state);
	w32(f, NVEMU_REG_CC, 0);
	memset(f->mem + ACQ, 0, 4096);
	test_prp_list(state);
}

/* ---- doorbells in shared memory, shadow doorbells */

static void test_db_mem(void **state)
{
	struct fx *f = *state;
	struct nvemu_pcie_db_stats st;
	uint32_t len = nvemu_pcie_db_area_size(f->pc);

	assert_int_equal(len, 4096); /* (NQ + 1) * 8 bytes, whole pages */
	f->dbmem = calloc(1, len);
	assert_non_null(f->dbmem);
	f->dbmem[0] = 7; /* whatever the memory held is forgotten */
	nvemu_pcie_db_attach(f->pc, f->dbmem);
	assert_int_equal(f->dbmem[0], 0);
	assert_false(nvemu_pcie_db_needs_polling(f->pc)); /* not enabled yet */
	enable(f);
	assert_true(nvemu_pcie_db_needs_polling(f->pc));
	f->dbmode = DB_MEM;
	io_pair(f);
	fill(f, DATA, 4096, 3);
	assert_success(rw(f, nvme_cmd_write, 0, 8, 0, DATA, 0));
	check_rw(f, DATA, 4096);
	/* nothing new: a poll takes nothing */
	assert_int_equal(nvemu_pcie_db_poll(f->pc), 0);
	nvemu_pcie_db_stats(f->pc, &st);
	assert_true(st.mapped);
	assert_int_equal(st.msg_writes, 0);
	assert_true(st.mem_writes >= 8);
	/* a register write still works, and lands in the shared page too */
	f->dbmode = DB_REG;
	assert_success(rw(f, nvme_cmd_read, 0, 1, 0, DATA2, 0));
	assert_int_equal(f->dbmem[2], f->tail[1]);
	assert_int_equal(f->dbmem[3], f->head[1]);
	assert_int_equal(nvemu_pcie_db_poll(f->pc), 0);
	nvemu_pcie_db_stats(f->pc, &st);
	assert_int_equal(st.msg_writes, 2);
	/* a reset puts the doorbells back to 0 and stops the polling */
	w32(f, NVEMU_REG_CC, 0);
	assert_int_equal(f->dbmem[2], 0);
	assert_int_equal(f->dbmem[3], 0);
	assert_false(nvemu_pcie_db_needs_polling(f->pc));
	/* and it works again after the next enable */
	memset(f->mem + ACQ, 0, 4096);
	memset(f->tail, 0, sizeof(f->tail));
	memset(f->head, 0, sizeof(f->head));
	f->phase[0] = true;
	f->dbmode = DB_MEM;
	enable(f);
	io_pair(f);
	memset(f->mem + IOCQ, 0, QDEPTH * 16);
	assert_success(rw(f, nvme_cmd_read, 0, 1, 0, DATA2, 0));
	nvemu_pcie_db_attach(f->pc, NULL);
	assert_false(nvemu_pcie_db_needs_polling(f->pc));
	free(f->dbmem);
	f->dbmem = NULL;
}

/* A hostile host writes nonsense into the shared page: AERs, counted once per value. */
static void test_db_mem_hostile(void **state)
{
	struct fx *f = *state;
	struct nvemu_sqe aer = {.opc = nvme_admin_async_event};
	struct nvemu_sqe log = {.opc = nvme_admin_get_log_page, .nsid = 0xffffffff, .dptr1 = DATA};
	struct nvemu_pcie_queue_debug d;
	struct nvemu_cqe cqe;
	uint32_t *mem = calloc(1, nvemu_pcie_db_area_size(f->pc));

	assert_non_null(mem);
	log.cdw10 = NVME_LOG_LID_ERROR | (63u << 16);
	f->dbmem = mem;
	nvemu_pcie_db_attach(f->pc, mem);
	enable(f);
	f->dbmode = DB_MEM;
	io_pair(f);
	submit(f, 0, &aer);
	assert_false(reap_nodb(f, 0, &cqe));
	/* a tail beyond the queue, seen by several polls */
	mem[2] = 0xffffffffu;
	nvemu_pcie_db_poll(f->pc);
	nvemu_pcie_db_poll(f->pc);
	assert_true(reap(f, 0, &cqe));
	assert_int_equal((le32toh(cqe.dw0) >> 8) & 0xff, NVME_AER_ERROR_INVALID_DB_VAL);
	assert_success(admin(f, &log));
	assert_int_equal(nvemu_pcie_ctrl_debug(f->pc, 1, &d), 0);
	assert_int_equal(d.doorbell_errors, 1);
	assert_int_equal(d.driver_sq_tail, 0);
	/* a doorbell of a queue that does not exist */
	submit(f, 0, &aer);
	mem[2 * 3] = 1;
	nvemu_pcie_db_poll(f->pc);
	assert_true(reap(f, 0, &cqe));
	assert_int_equal((le32toh(cqe.dw0) >> 8) & 0xff, NVME_AER_ERROR_INVALID_DB_REG);
	assert_success(admin(f, &log));
	/* the queue still works once the host writes sane values */
	fill(f, DATA, 512, 1);
	assert_success(rw(f, nvme_cmd_write, 0, 1, 0, DATA, 0));
	assert_int_equal(nvemu_pcie_ctrl_debug(f->pc, 1, &d), 0);
	assert_int_equal(d.doorbell_errors, 2);
	nvemu_pcie_db_attach(f->pc, NULL);
	free(mem);
	f->dbmem = NULL;
}

static uint16_t dbbuf_config(struct fx *f, uint64_t dbs, uint64_t eis)
{
	struct nvemu_sqe c = {.opc = nvme_admin_dbbuf, .dptr1 = dbs, .dptr2 = eis};

	return admin(f, &c);
}

static void test_dbbuf(void **state)
{
	struct fx *f = *state;
	struct nvemu_sqe id = {
		.opc = nvme_admin_identify, .dptr1 = DATA, .cdw10 = NVME_IDENTIFY_CNS_CTRL};
	struct nvemu_pcie_db_stats st;
	struct nvemu_cqe cqe;
	struct nvme_id_ctrl idc;

	enable(f);
	assert_success(admin(f, &id));
	memcpy(&idc, f->mem + DATA, sizeof(idc));
	assert_true(le16toh(idc.oacs) & NVME_CTRL_OACS_DBBUF_CFG);
	/* both buffers, page aligned, distinct */
	assert_status(dbbuf_config(f, SHADOW + 8, EVENTIDX), NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	assert_status(dbbuf_config(f, SHADOW, 0), NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	assert_status(dbbuf_config(f, SHADOW, SHADOW), NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	/* beyond guest memory: cannot be mapped */
	assert_status(dbbuf_config(f, MEM_SIZE, EVENTIDX), NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
	memset(f->mem + SHADOW, 0xee, 8192);
	assert_success(dbbuf_config(f, SHADOW, EVENTIDX));
	nvemu_pcie_db_stats(f->pc, &st);
	assert_true(st.shadow);
	assert_int_equal(st.shadow_addr, SHADOW);
	assert_int_equal(st.eventidx_addr, EVENTIDX);
	assert_true(nvemu_pcie_db_needs_polling(f->pc));
	io_pair(f);
	/* a new queue starts at 0 in both buffers */
	assert_int_equal(*shadow_at(f, SHADOW, 2), 0);
	assert_int_equal(*shadow_at(f, EVENTIDX, 3), 0);
	f->dbmode = DB_SHADOW;
	fill(f, DATA, 4096, 9);
	assert_success(rw(f, nvme_cmd_write, 0, 8, 0, DATA, 0));
	check_rw(f, DATA, 4096);
	/* EventIdx follows what the controller took */
	assert_int_equal(*shadow_at(f, EVENTIDX, 2), f->tail[1]);
	assert_int_equal(*shadow_at(f, EVENTIDX, 3), f->head[1]);
	nvemu_pcie_db_stats(f->pc, &st);
	assert_true(st.shadow_updates >= 4);
	/*
	 * Two commands on the shadow, the register rung with the older tail
	 * only: the shadow wins, both run, the tail never moves back.
	 */
	for (int i = 0; i < 2; i++) {
		struct nvemu_sqe c = {.opc = nvme_cmd_read, .nsid = 1, .dptr1 = DATA2};

		c.cid = ++f->cid;
		memcpy(f->mem + f->sqbase[1] + (uint64_t)f->tail[1] * 64, &c, 64);
		f->tail[1] = (f->tail[1] + 1) % f->size[1];
		*shadow_at(f, SHADOW, 2) = f->tail[1];
	}
	w32(f, 0x1000 + 8, (f->tail[1] + f->size[1] - 1) % f->size[1]);
	assert_true(reap_nodb(f, 1, &cqe));
	assert_success(cqe_status(&cqe));
	assert_true(reap_nodb(f, 1, &cqe));
	assert_success(cqe_status(&cqe));
	assert_false(reap_nodb(f, 1, &cqe));
	db_cq(f, 1, f->head[1]);
	/* a bad shadow value: one AER-worthy error, not one per poll */
	*shadow_at(f, SHADOW, 2) = 0xffff;
	nvemu_pcie_db_poll(f->pc);
	nvemu_pcie_db_poll(f->pc);
	struct nvemu_pcie_queue_debug d;

	assert_int_equal(nvemu_pcie_ctrl_debug(f->pc, 1, &d), 0);
	assert_int_equal(d.doorbell_errors, 1);
	/* a reset forgets the buffers */
	w32(f, NVEMU_REG_CC, 0);
	nvemu_pcie_db_stats(f->pc, &st);
	assert_false(st.shadow);
	assert_false(nvemu_pcie_db_needs_polling(f->pc));
}

/* Without shared guest memory the buffers cannot be polled: refused. */
static void test_dbbuf_dma(void **state)
{
	struct fx *f = *state;

	enable(f);
	assert_status(dbbuf_config(f, SHADOW, EVENTIDX), NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cfg_ids, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_bar_command, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_regs, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_enable_reset, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_enable_invalid, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_nssr, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_identify, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_phase_wrap, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_cq_full_backlog, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_create_queue_errors, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_prp_simple, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_prp_list, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_prp_invalid, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_mdts, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_sgl, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_sgl_invalid, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_quirk_no_sgl, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_doorbell_errors, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_msix, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_intx, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_coalescing, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_reset_inflight, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_delete_reset, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_dma_path, setup_dma, teardown),
		cmocka_unit_test_setup_teardown(test_sgl, setup_dma, teardown),
		cmocka_unit_test_setup_teardown(test_phase_wrap, setup_dma, teardown),
		cmocka_unit_test_setup_teardown(test_db_mem, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_db_mem_hostile, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_dbbuf, setup_map, teardown),
		cmocka_unit_test_setup_teardown(test_dbbuf_dma, setup_dma, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
