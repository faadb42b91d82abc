/* SPDX-License-Identifier: MIT */
/*
 * Fused Compare and Write through the loop transport: the first half is
 * submitted asynchronously (it waits for its partner), the second runs to
 * completion. Atomicity is checked on a namespace over a delay bdev, where
 * I/O stays in flight long enough to interleave.
 */
#include <poll.h>
#include <stdlib.h>

#include "test-util.h"
#include <nvemu/pcie.h>

#define FUSE_FIRST  1
#define FUSE_SECOND 2
#define MISSING	    NVEMU_SC_GENERIC(NVME_SC_FUSED_MISSING)
#define FAILED	    NVEMU_SC_GENERIC(NVME_SC_FUSED_FAIL)
#define INVALID	    (NVEMU_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVEMU_DNR)
#define MISCOMPARE  (NVEMU_SC_MEDIA(NVME_SC_COMPARE_FAILED) | NVEMU_DNR)

struct areq {
	struct nvemu_req req;
	bool done;
	int order; /* completion order, for the atomicity test */
};

static int completions;

static void adone(struct nvemu_req *req)
{
	struct areq *a = (struct areq *)req;

	a->done = true;
	a->order = ++completions;
}

static void asubmit(struct tu_env *env, struct areq *a, uint8_t opc, uint8_t fuse, uint64_t slba,
		    uint32_t nlb, void *data)
{
	memset(a, 0, sizeof(*a));
	a->req.cmd.opc = opc;
	a->req.cmd.flags = fuse;
	a->req.cmd.cid = (uint16_t)(0x100 + completions + opc);
	a->req.cmd.nsid = 1;
	a->req.cmd.cdw10 = (uint32_t)slba;
	a->req.cmd.cdw11 = (uint32_t)(slba >> 32);
	a->req.cmd.cdw12 = nlb - 1;
	a->req.buf = data;
	a->req.buf_len = nlb * 512;
	a->req.done = adone;
	nvemu_host_submit(env->host, 1, &a->req);
}

static uint16_t fused_second(struct tu_env *env, uint8_t opc, uint64_t slba, uint32_t nlb,
			     void *data)
{
	struct nvemu_sqe cmd = {.opc = opc, .flags = FUSE_SECOND, .nsid = 1};

	cmd.cdw10 = (uint32_t)slba;
	cmd.cdw12 = nlb - 1;
	return tu_io(env, &cmd, data, nlb * 512, NULL);
}

static uint8_t cur[4096], next[4096], rd[4096];

static void test_compare_and_write(void **state)
{
	struct tu_env *env = *state;
	struct areq cmp;

	memset(cur, 0x11, sizeof(cur));
	memset(next, 0x22, sizeof(next));
	assert_success(tu_rw(env, nvme_cmd_write, 1, 8, 8, cur, sizeof(cur)));
	asubmit(env, &cmp, nvme_cmd_compare, FUSE_FIRST, 8, 8, cur);
	assert_false(cmp.done); /* waits for its second half */
	assert_success(fused_second(env, nvme_cmd_write, 8, 8, next));
	assert_true(cmp.done);
	assert_success(cmp.req.cqe.status);
	assert_success(tu_rw(env, nvme_cmd_read, 1, 8, 8, rd, sizeof(rd)));
	assert_memory_equal(rd, next, sizeof(rd));

	/* a miscompare: the data stays, the Write fails as a failed fused command */
	asubmit(env, &cmp, nvme_cmd_compare, FUSE_FIRST, 8, 8, cur);
	assert_status(fused_second(env, nvme_cmd_write, 8, 8, cur), FAILED);
	assert_true(cmp.done);
	assert_int_equal(cmp.req.cqe.status, MISCOMPARE);
	assert_success(tu_rw(env, nvme_cmd_read, 1, 8, 8, rd, sizeof(rd)));
	assert_memory_equal(rd, next, sizeof(rd));
}

static void test_missing_and_mismatched(void **state)
{
	struct tu_env *env = *state;
	struct areq cmp, cmp2;
	struct nvemu_sqe cmd = {.opc = nvme_cmd_compare, .flags = 3, .nsid = 1};

	/* a second half alone */
	assert_status(fused_second(env, nvme_cmd_write, 0, 1, next), MISSING);
	/* a first half followed by an ordinary command: it is missing its partner */
	asubmit(env, &cmp, nvme_cmd_compare, FUSE_FIRST, 0, 1, cur);
	assert_success(tu_rw(env, nvme_cmd_read, 1, 0, 1, rd, 512));
	assert_true(cmp.done);
	assert_int_equal(cmp.req.cqe.status, MISSING);
	/* two first halves: the older one is missing its partner */
	asubmit(env, &cmp, nvme_cmd_compare, FUSE_FIRST, 0, 1, cur);
	asubmit(env, &cmp2, nvme_cmd_compare, FUSE_FIRST, 0, 1, cur);
	assert_true(cmp.done);
	assert_int_equal(cmp.req.cqe.status, MISSING);
	/* halves naming different blocks */
	assert_status(fused_second(env, nvme_cmd_write, 1, 1, next), INVALID);
	assert_true(cmp2.done);
	assert_int_equal(cmp2.req.cqe.status, INVALID);
	/* a Read as the second half */
	asubmit(env, &cmp, nvme_cmd_compare, FUSE_FIRST, 0, 1, cur);
	assert_status(fused_second(env, nvme_cmd_read, 0, 1, rd), INVALID);
	assert_int_equal(cmp.req.cqe.status, INVALID);
	/* a Write as the first half, FUSE 11b, a fused admin command */
	asubmit(env, &cmp, nvme_cmd_write, FUSE_FIRST, 0, 1, cur);
	assert_int_equal(cmp.req.cqe.status, INVALID);
	assert_status(tu_io(env, &cmd, cur, 512, NULL), INVALID);
	cmd.opc = nvme_admin_identify;
	cmd.flags = FUSE_FIRST;
	assert_status(tu_admin(env, &cmd, cur, 4096, NULL), INVALID);
	/* the pair out of range: Compare gets the reason, Write the fused failure */
	asubmit(env, &cmp, nvme_cmd_compare, FUSE_FIRST, 1024, 1, cur);
	assert_status(fused_second(env, nvme_cmd_write, 1024, 1, next), FAILED);
	assert_int_equal(cmp.req.cqe.status & 0x7ff, NVME_SC_LBA_RANGE);
}

static void test_disabled(void **state)
{
	struct tu_env *env = *state;
	struct areq cmp;
	uint8_t id[4096];

	env->ctrl->p.compare_write = false;
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, id));
	assert_int_equal(le16toh(((struct nvme_id_ctrl *)id)->fuses), 0);
	asubmit(env, &cmp, nvme_cmd_compare, FUSE_FIRST, 0, 1, cur);
	assert_true(cmp.done);
	assert_int_equal(cmp.req.cqe.status, INVALID);
	env->ctrl->p.compare_write = true;
	assert_success(tu_identify(env, NVME_IDENTIFY_CNS_CTRL, 0, 0, id));
	assert_int_equal(le16toh(((struct nvme_id_ctrl *)id)->fuses), 1);
}

/* ---- atomicity, over a delay bdev */

static struct nvemu_bdev *ram, *dly;

static int setup_delay(void **state)
{
	struct nvemu_bdev_delay_opts o = {.read_latency_us = 20000, .write_latency_us = 20000};
	struct nvemu_error err = {0};
	struct nvemu_ns_params np;
	struct tu_env *env;
	uint32_t nsid;

	tu_setup(state);
	env = *state;
	assert_int_equal(nvemu_bdev_ram_create("fram", 1 << 20, 512, &ram, &err), 0);
	assert_int_equal(nvemu_bdev_delay_create("fdly", ram, &o, &dly, &err), 0);
	nvemu_ns_params_init(&np);
	np.nsid = 3;
	np.bdev = dly;
	assert_int_equal(nvemu_subsys_add_ns_ex(env->subsys, &np, &nsid, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, 3, &err), 0);
	return 0;
}

static int teardown_delay(void **state)
{
	tu_teardown(state);
	assert_int_equal(nvemu_bdev_destroy(dly, NULL), 0);
	assert_int_equal(nvemu_bdev_destroy(ram, NULL), 0);
	return 0;
}

static void wait_all(struct tu_env *env, struct areq **r, int n)
{
	for (int spins = 0; spins < 1000; spins++) {
		int done = 0;

		for (int i = 0; i < n; i++)
			done += r[i]->done;
		if (done == n)
			return;
		poll(NULL, 0, 2);
		nvemu_host_poll(env->host);
	}
	fail_msg("commands did not complete");
}

/*
 * A write in flight when the pair arrives finishes before the pair reads;
 * a write submitted while the pair runs waits until the pair is done, so
 * the compare sees the first write and the last write lands last.
 */
static void test_atomic(void **state)
{
	struct tu_env *env = *state;
	struct areq w1, cmp, wr, w2, *all[] = {&w1, &cmp, &wr, &w2};
	static uint8_t a[512], b[512], d[512];

	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	memset(d, 0xdd, sizeof(d));
	completions = 0;

	memset(&w1, 0, sizeof(w1));
	w1.req.cmd = (struct nvemu_sqe){.opc = nvme_cmd_write, .cid = 1, .nsid = 3};
	w1.req.buf = a;
	w1.req.buf_len = 512;
	w1.req.done = adone;
	cmp = w1;
	cmp.req.cmd = (struct nvemu_sqe){.opc = nvme_cmd_compare, .flags = FUSE_FIRST, .cid = 2,
					 .nsid = 3};
	wr = w1;
	wr.req.cmd = (struct nvemu_sqe){.opc = nvme_cmd_write, .flags = FUSE_SECOND, .cid = 3,
					.nsid = 3};
	wr.req.buf = b;
	w2 = w1;
	w2.req.cmd.cid = 4;
	w2.req.buf = d;

	nvemu_host_submit(env->host, 1, &w1.req);  /* in flight for 20 ms */
	nvemu_host_submit(env->host, 1, &cmp.req); /* compares against a: w1 must land first */
	nvemu_host_submit(env->host, 1, &wr.req);
	nvemu_host_submit(env->host, 1, &w2.req); /* must wait for the pair */
	wait_all(env, all, 4);
	assert_success(w1.req.cqe.status);
	assert_success(cmp.req.cqe.status);
	assert_success(wr.req.cqe.status);
	assert_success(w2.req.cqe.status);
	assert_true(w1.order < cmp.order);
	assert_true(wr.order < w2.order);
	assert_success(tu_rw(env, nvme_cmd_read, 3, 0, 1, rd, 512));
	assert_memory_equal(rd, d, 512);
}


/* ---- PCIe: the halves are adjacent SQ entries in host memory, one doorbell */

#define P_MEM  (4u << 20)
#define P_ASQ  0x10000
#define P_ACQ  0x20000
#define P_IOSQ 0x30000
#define P_IOCQ 0x40000
#define P_DATA 0x100000
#define P_QD   16

struct pfx {
	struct nvemu_subsys *subsys;
	struct nvemu_pcie_ctrl *pc;
	uint8_t *mem;
	uint16_t tail[2], head[2], cid;
	bool phase[2];
};

static int p_read(void *ctx, uint64_t a, void *b, size_t n)
{
	struct pfx *f = ctx;

	if (a > P_MEM || n > P_MEM - a)
		return -1;
	memcpy(b, f->mem + a, n);
	return 0;
}

static int p_write(void *ctx, uint64_t a, const void *b, size_t n)
{
	struct pfx *f = ctx;

	if (a > P_MEM || n > P_MEM - a)
		return -1;
	memcpy(f->mem + a, b, n);
	return 0;
}

static void p_msix(void *ctx, uint16_t v)
{
	(void)ctx;
	(void)v;
}

static void p_intx(void *ctx, bool level)
{
	(void)ctx;
	(void)level;
}

static const struct nvemu_pci_host_ops p_ops = {
	.dma_read = p_read, .dma_write = p_write, .msix_notify = p_msix, .intx_set = p_intx};

static void p_put(struct pfx *f, uint16_t qid, struct nvemu_sqe *c)
{
	c->cid = ++f->cid;
	memcpy(f->mem + (qid ? P_IOSQ : P_ASQ) + (uint64_t)f->tail[qid] * 64, c, 64);
	f->tail[qid] = (f->tail[qid] + 1) % P_QD;
}

static void p_ring(struct pfx *f, uint16_t qid)
{
	nvemu_pcie_bar0_write(f->pc, 0x1000 + 8u * qid, 4, f->tail[qid]);
}

static uint16_t p_reap(struct pfx *f, uint16_t qid, uint16_t *cid)
{
	uint8_t *e = f->mem + (qid ? P_IOCQ : P_ACQ) + (uint64_t)f->head[qid] * 16;
	uint16_t st;

	memcpy(&st, e + 14, 2);
	assert_int_equal(st & 1, f->phase[qid]);
	if (cid)
		memcpy(cid, e + 12, 2);
	if (++f->head[qid] == P_QD) {
		f->head[qid] = 0;
		f->phase[qid] = !f->phase[qid];
	}
	nvemu_pcie_bar0_write(f->pc, 0x1000 + 8u * qid + 4, 4, f->head[qid]);
	return st >> 1;
}

static uint16_t p_run(struct pfx *f, uint16_t qid, struct nvemu_sqe *c)
{
	p_put(f, qid, c);
	p_ring(f, qid);
	return p_reap(f, qid, NULL);
}

static struct nvemu_sqe p_rw(uint8_t opc, uint8_t fuse, uint64_t data)
{
	struct nvemu_sqe c = {.opc = opc, .flags = fuse, .nsid = 1, .dptr1 = data};

	c.cdw10 = 4;
	c.cdw12 = 0;
	return c;
}

static int setup_pcie(void **state)
{
	struct pfx *f = calloc(1, sizeof(*f));
	struct nvemu_subsys_params sp;
	struct nvemu_port_params pp;
	struct nvemu_ctrl_params cp;
	struct nvemu_error err = {0};
	struct nvemu_sqe c;
	uint16_t port, cntlid;
	uint32_t nsid;

	assert_non_null(f);
	f->mem = calloc(1, P_MEM);
	assert_non_null(f->mem);
	f->phase[0] = f->phase[1] = true;
	nvemu_subsys_params_init(&sp);
	sp.nqn = "nqn.2024-01.io.nvemu:fused-pcie";
	assert_int_equal(nvemu_subsys_create(&sp, &f->subsys, &err), 0);
	nvemu_port_params_init(&pp, NVEMU_PORT_PCIE);
	assert_int_equal(nvemu_subsys_add_port(f->subsys, &pp, &port, &err), 0);
	nvemu_ctrl_params_init(&cp); /* compare_write on by default */
	cp.port_id = port;
	cp.num_io_queues = 1;
	assert_int_equal(nvemu_subsys_add_ctrl_ex(f->subsys, &cp, &cntlid, &err), 0);
	assert_int_equal(nvemu_subsys_add_ns(f->subsys, 64, &nsid, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(nvemu_subsys_ctrl(f->subsys, cntlid), 1, &err), 0);
	assert_int_equal(
		nvemu_pcie_ctrl_create(nvemu_subsys_ctrl(f->subsys, cntlid), &p_ops, f, &f->pc, &err),
		0);
	nvemu_pcie_bar0_write(f->pc, NVEMU_REG_AQA, 4, (P_QD - 1) | (P_QD - 1) << 16);
	nvemu_pcie_bar0_write(f->pc, NVEMU_REG_ASQ, 8, P_ASQ);
	nvemu_pcie_bar0_write(f->pc, NVEMU_REG_ACQ, 8, P_ACQ);
	nvemu_pcie_bar0_write(f->pc, NVEMU_REG_CC, 4, 1u | 6u << 16 | 4u << 20);
	assert_int_equal(nvemu_pcie_bar0_read(f->pc, NVEMU_REG_CSTS, 4) & 3, 1);
	c = (struct nvemu_sqe){.opc = nvme_admin_create_cq, .dptr1 = P_IOCQ};
	c.cdw10 = 1 | (P_QD - 1) << 16;
	c.cdw11 = 1; /* PC, no interrupts */
	assert_success(p_run(f, 0, &c));
	c = (struct nvemu_sqe){.opc = nvme_admin_create_sq, .dptr1 = P_IOSQ};
	c.cdw10 = 1 | (P_QD - 1) << 16;
	c.cdw11 = 1 | 1u << 16;
	assert_success(p_run(f, 0, &c));
	*state = f;
	return 0;
}

static int teardown_pcie(void **state)
{
	struct pfx *f = *state;

	nvemu_pcie_ctrl_destroy(f->pc);
	nvemu_subsys_destroy(f->subsys);
	free(f->mem);
	free(f);
	return 0;
}

static void test_pcie_adjacent(void **state)
{
	struct pfx *f = *state;
	struct nvemu_sqe c;
	uint16_t cid1, cid2, st1, st2;

	memset(f->mem + P_DATA, 0x11, 512);	    /* current */
	memset(f->mem + P_DATA + 4096, 0x22, 512); /* new */
	c = p_rw(nvme_cmd_write, 0, P_DATA);
	assert_success(p_run(f, 1, &c));
	/* both entries, then one doorbell */
	c = p_rw(nvme_cmd_compare, 1, P_DATA);
	p_put(f, 1, &c);
	c = p_rw(nvme_cmd_write, 2, P_DATA + 4096);
	p_put(f, 1, &c);
	p_ring(f, 1);
	st1 = p_reap(f, 1, &cid1);
	st2 = p_reap(f, 1, &cid2);
	assert_int_equal(cid1, f->cid - 1);
	assert_int_equal(cid2, f->cid);
	assert_success(st1);
	assert_success(st2);
	c = p_rw(nvme_cmd_read, 0, P_DATA + 8192);
	assert_success(p_run(f, 1, &c));
	assert_memory_equal(f->mem + P_DATA + 8192, f->mem + P_DATA + 4096, 512);

	/* a miscompare: the old data stays */
	c = p_rw(nvme_cmd_compare, 1, P_DATA);
	p_put(f, 1, &c);
	c = p_rw(nvme_cmd_write, 2, P_DATA);
	p_put(f, 1, &c);
	p_ring(f, 1);
	assert_int_equal(p_reap(f, 1, NULL), MISCOMPARE);
	assert_int_equal(p_reap(f, 1, NULL), FAILED);
	c = p_rw(nvme_cmd_read, 0, P_DATA + 8192);
	assert_success(p_run(f, 1, &c));
	assert_memory_equal(f->mem + P_DATA + 8192, f->mem + P_DATA + 4096, 512);

	/* the first half, then a Read in the next entry: missing its partner */
	c = p_rw(nvme_cmd_compare, 1, P_DATA);
	p_put(f, 1, &c);
	c = p_rw(nvme_cmd_read, 0, P_DATA + 8192);
	p_put(f, 1, &c);
	p_ring(f, 1);
	assert_int_equal(p_reap(f, 1, NULL), MISSING);
	assert_success(p_reap(f, 1, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_compare_and_write, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_mismatched, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_disabled, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_atomic, setup_delay, teardown_delay),
		cmocka_unit_test_setup_teardown(test_pcie_adjacent, setup_pcie, teardown_pcie),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
