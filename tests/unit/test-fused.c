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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_compare_and_write, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_mismatched, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_disabled, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_atomic, setup_delay, teardown_delay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
