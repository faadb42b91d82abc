/* SPDX-License-Identifier: MIT */
/*
 * The error backend: rules by I/O type, LBA range, count, seeded
 * probability and queue depth, changed at run time; then through the
 * engine: the status a host sees, SMART media errors, the Error Information
 * log, and a stopped device (pending) under controller reset, Abort,
 * namespace detach and subsystem destroy.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test-util.h"

#define READ_ERR  NVEMU_SC_MEDIA(NVME_SC_READ_ERROR)
#define WRITE_ERR NVEMU_SC_MEDIA(NVME_SC_WRITE_FAULT)
#define RD	  (1u << NVEMU_BIO_READ)
#define WR	  (1u << NVEMU_BIO_WRITE)

struct done {
	int called;
	int err;
	uint16_t status;
};

static void bio_end(struct nvemu_bio *bio, int err)
{
	struct done *d = bio->private;

	d->called++;
	d->err = err;
	d->status = bio->status;
}

struct fixture {
	struct nvemu_bdev *ram, *eb;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct nvemu_error err = {0};

	assert_int_equal(nvemu_bdev_ram_create("ram0", 1 << 20, 512, &f->ram, &err), 0);
	assert_int_equal(nvemu_bdev_error_create("EE_ram0", f->ram, &f->eb, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(nvemu_bdev_destroy(f->eb, NULL), 0);
	assert_int_equal(nvemu_bdev_destroy(f->ram, NULL), 0);
	free(f);
	return 0;
}

/* One bio of 4 KiB at block lba; the result in *d. */
static int io(struct nvemu_bdev *b, enum nvemu_bio_op op, uint64_t lba, void *buf, struct done *d,
	      struct nvemu_bio *bio)
{
	memset(d, 0, sizeof(*d));
	*bio = (struct nvemu_bio){.op = op,
				  .offset = lba * 512,
				  .len = 4096,
				  .buf = buf,
				  .end_io = bio_end,
				  .private = d};
	return nvemu_bdev_submit(b, bio);
}

static struct nvemu_bdev_error_rule failure(uint32_t mask, uint32_t num)
{
	return (struct nvemu_bdev_error_rule){
		.io_mask = mask, .type = NVEMU_BDEV_ERROR_FAILURE, .num = num};
}

static void test_passthrough(void **state)
{
	struct fixture *f = *state;
	uint8_t w[4096], r[4096];
	struct nvemu_bio bio;
	struct done d;

	assert_string_equal(f->eb->ops->type, "error");
	assert_int_equal(f->eb->size, f->ram->size);
	memset(w, 0xa5, sizeof(w));
	assert_int_equal(io(f->eb, NVEMU_BIO_WRITE, 8, w, &d, &bio), 0);
	assert_int_equal(d.called, 1);
	assert_int_equal(d.err, 0);
	assert_int_equal(io(f->ram, NVEMU_BIO_READ, 8, r, &d, &bio), 0);
	assert_memory_equal(r, w, sizeof(w));
	/* The base is held like a namespace holds it. */
	assert_int_equal(nvemu_bdev_destroy(f->ram, NULL), -EBUSY);
}

/* An LBA range with a count: only overlapping reads fail, and only num of them. */
static void test_range_count(void **state)
{
	struct fixture *f = *state;
	struct nvemu_bdev_error_rule rule = failure(RD, 2), got[4];
	struct nvemu_error err = {0};
	uint8_t buf[4096];
	struct nvemu_bio bio;
	unsigned nr = 4;
	struct done d;

	rule.offset = 100 * 512;
	rule.len = 10 * 512; /* LBAs 100..109 */
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), 0);
	/* 8 blocks at 88 end at 95: no overlap; at 92 they reach 99: none either. */
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 88, buf, &d, &bio), 0);
	assert_int_equal(d.err, 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 92, buf, &d, &bio), 0);
	assert_int_equal(d.err, 0);
	/* Writes are not selected. */
	assert_int_equal(io(f->eb, NVEMU_BIO_WRITE, 100, buf, &d, &bio), 0);
	assert_int_equal(d.err, 0);
	/* 93..100 overlaps at 100. */
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 93, buf, &d, &bio), 0);
	assert_int_equal(d.called, 1);
	assert_int_equal(d.err, -EIO);
	assert_int_equal(d.status, READ_ERR);
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 109, buf, &d, &bio), 0);
	assert_int_equal(d.err, -EIO);
	/* Used up. */
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 100, buf, &d, &bio), 0);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.status, 0);
	assert_int_equal(nvemu_bdev_error_get(f->eb, NULL, got, &nr, NULL), 0);
	assert_int_equal(nr, 1);
	assert_int_equal(got[0].num, 0);
	assert_int_equal(got[0].injected, 2);
	/* A range past the end is refused and names the field. */
	rule.offset = f->eb->size;
	rule.len = 512;
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), -ERANGE);
	assert_non_null(strstr(err.msg, "offset_blocks"));
}

/* An exact status for writes, forever, changed and removed at run time. */
static void test_status_runtime(void **state)
{
	struct fixture *f = *state;
	struct nvemu_bdev_error_rule rule = failure(WR, NVEMU_BDEV_ERROR_FOREVER);
	struct nvemu_error err = {0};
	uint8_t buf[4096] = {0};
	struct nvemu_bio bio;
	unsigned nr = 0;
	struct done d;

	assert_int_equal(io(f->eb, NVEMU_BIO_WRITE, 0, buf, &d, &bio), 0);
	assert_int_equal(d.err, 0);
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(io(f->eb, NVEMU_BIO_WRITE, 0, buf, &d, &bio), 0);
		assert_int_equal(d.status, WRITE_ERR);
	}
	/* num 0 removes the rules on that type (SPDK). */
	rule.num = 0;
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), 0);
	assert_int_equal(nvemu_bdev_error_get(f->eb, NULL, NULL, &nr, NULL), 0);
	assert_int_equal(nr, 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_WRITE, 0, buf, &d, &bio), 0);
	assert_int_equal(d.err, 0);
	/* A chosen status (Access Denied) on every type. */
	rule = failure(RD | WR | (1u << NVEMU_BIO_FLUSH), 3);
	rule.status = NVEMU_SC_MEDIA(NVME_SC_ACCESS_DENIED) | NVEMU_DNR;
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 0, buf, &d, &bio), 0);
	assert_int_equal(d.status, rule.status);
	memset(&bio, 0, sizeof(bio));
	bio = (struct nvemu_bio){.op = NVEMU_BIO_FLUSH, .end_io = bio_end, .private = &d};
	memset(&d, 0, sizeof(d));
	assert_int_equal(nvemu_bdev_submit(f->eb, &bio), 0);
	assert_int_equal(d.status, rule.status);
	assert_int_equal(nvemu_bdev_error_clear(f->eb), 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 0, buf, &d, &bio), 0);
	assert_int_equal(d.err, 0);
	/* Status 0 is no failure; 17 rules are too many. */
	rule.status = NVEMU_DNR;
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), -EINVAL);
	rule.status = 0;
	for (int i = 0; i < NVEMU_BDEV_ERROR_MAX_RULES; i++)
		assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), 0);
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), -ENOSPC);
	nvemu_bdev_error_clear(f->eb);
}

/* Count the failures among n reads with a 25 % rule and seed s. */
static unsigned run_probability(struct fixture *f, uint64_t seed, uint8_t *pattern, unsigned n)
{
	struct nvemu_bdev_error_rule rule = failure(RD, NVEMU_BDEV_ERROR_FOREVER);
	struct nvemu_error err = {0};
	uint8_t buf[4096];
	struct nvemu_bio bio;
	unsigned fails = 0;
	struct done d;

	rule.probability_ppm = 250000;
	nvemu_bdev_error_clear(f->eb);
	assert_int_equal(nvemu_bdev_error_set_seed(f->eb, seed), 0);
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), 0);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(io(f->eb, NVEMU_BIO_READ, 0, buf, &d, &bio), 0);
		pattern[i] = d.err != 0;
		fails += pattern[i];
	}
	nvemu_bdev_error_clear(f->eb);
	return fails;
}

static void test_probability_seeded(void **state)
{
	struct fixture *f = *state;
	static uint8_t a[2000], b[2000], c[2000];
	unsigned na = run_probability(f, 42, a, 2000);
	unsigned nb = run_probability(f, 42, b, 2000);
	unsigned nc = run_probability(f, 43, c, 2000);

	/* About a quarter, the same bios for the same seed, others for another. */
	assert_in_range(na, 400, 600);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, sizeof(a));
	assert_in_range(nc, 400, 600);
	assert_memory_not_equal(a, c, sizeof(a));
	/* Over 100 % is refused. */
	struct nvemu_bdev_error_rule rule = failure(RD, 1);
	struct nvemu_error err = {0};

	rule.probability_ppm = NVEMU_BDEV_ERROR_PPM + 1;
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), -EINVAL);
}

/* Pending: held until cancelled or the rule goes; then it reaches the base. */
static void test_pending(void **state)
{
	struct fixture *f = *state;
	struct nvemu_bdev_error_rule rule = {
		.io_mask = RD | WR, .type = NVEMU_BDEV_ERROR_PENDING, .num = 2};
	struct nvemu_error err = {0};
	uint8_t w[4096], r[4096];
	struct nvemu_bio b1, b2, b3;
	struct done d1, d2, d3;
	unsigned pending = 0;

	memset(w, 0x3c, sizeof(w));
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_WRITE, 16, w, &d1, &b1), 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 0, r, &d2, &b2), 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 0, r, &d3, &b3), 0);
	assert_int_equal(d1.called + d2.called, 0);
	assert_int_equal(d3.called, 1); /* num 2 used up */
	assert_int_equal(nvemu_bdev_inflight(f->eb), 2);
	assert_int_equal(nvemu_bdev_error_get(f->eb, NULL, NULL, NULL, &pending), 0);
	assert_int_equal(pending, 2);
	/* A bdev with held I/O can't go. */
	assert_int_equal(nvemu_bdev_destroy(f->eb, NULL), -EBUSY);
	/* Cancel one: -ECANCELED; a bio it does not hold: -ENOENT. */
	assert_int_equal(nvemu_bdev_cancel(f->eb, &b2), 0);
	assert_int_equal(d2.called, 1);
	assert_int_equal(d2.err, -ECANCELED);
	assert_int_equal(nvemu_bdev_cancel(f->eb, &b2), -ENOENT);
	assert_int_equal(nvemu_bdev_cancel(f->eb, &b3), -ENOENT);
	/* Clearing lets the write through to the base. */
	assert_int_equal(nvemu_bdev_error_clear(f->eb), 0);
	assert_int_equal(d1.called, 1);
	assert_int_equal(d1.err, 0);
	assert_int_equal(nvemu_bdev_inflight(f->eb), 0);
	assert_int_equal(io(f->ram, NVEMU_BIO_READ, 16, r, &d2, &b2), 0);
	assert_memory_equal(r, w, sizeof(w));
}

/* Corrupt data: reads come back with a byte XORed; writes store it, the caller's buffer intact. */
static void test_corrupt_nomem(void **state)
{
	struct fixture *f = *state;
	struct nvemu_bdev_error_rule rule = {.io_mask = RD | WR,
					     .type = NVEMU_BDEV_ERROR_CORRUPT_DATA,
					     .num = 2,
					     .corrupt_offset = 10,
					     .corrupt_value = 0xff};
	struct nvemu_error err = {0};
	uint8_t w[4096], r[4096];
	struct nvemu_bio bio;
	struct done d;

	memset(w, 0x11, sizeof(w));
	assert_int_equal(io(f->eb, NVEMU_BIO_WRITE, 0, w, &d, &bio), 0);
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 0, r, &d, &bio), 0);
	assert_int_equal(d.err, 0);
	assert_int_equal(r[10], 0xee);
	assert_int_equal(r[9], 0x11);
	assert_int_equal(io(f->eb, NVEMU_BIO_WRITE, 8, w, &d, &bio), 0);
	assert_int_equal(d.err, 0);
	assert_int_equal(w[10], 0x11);
	assert_int_equal(io(f->ram, NVEMU_BIO_READ, 8, r, &d, &bio), 0);
	assert_int_equal(r[10], 0xee);
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 0, r, &d, &bio), 0);
	assert_int_equal(r[10], 0x11); /* used up */
	rule.corrupt_value = 0;
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), -EINVAL);
	/* nomem: the bio does not start. */
	rule = (struct nvemu_bdev_error_rule){.io_mask = RD, .type = NVEMU_BDEV_ERROR_NOMEM, .num = 1};
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 0, r, &d, &bio), -ENOMEM);
	assert_int_equal(d.called, 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 0, r, &d, &bio), 0);
	assert_int_equal(d.called, 1);
}

/* A queue depth: only once that many bios are in flight. */
static void test_queue_depth(void **state)
{
	struct fixture *f = *state;
	struct nvemu_bdev_error_rule hold = {
		.io_mask = WR, .type = NVEMU_BDEV_ERROR_PENDING, .num = NVEMU_BDEV_ERROR_FOREVER};
	struct nvemu_bdev_error_rule rule = failure(RD, NVEMU_BDEV_ERROR_FOREVER);
	struct nvemu_error err = {0};
	uint8_t buf[4096] = {0};
	struct nvemu_bio w1, w2, r;
	struct done d1, d2, d;

	rule.queue_depth = 3;
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), 0);
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &hold, &err), 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 0, buf, &d, &r), 0);
	assert_int_equal(d.err, 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_WRITE, 0, buf, &d1, &w1), 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 0, buf, &d, &r), 0);
	assert_int_equal(d.err, 0); /* 2 in flight with it */
	assert_int_equal(io(f->eb, NVEMU_BIO_WRITE, 0, buf, &d2, &w2), 0);
	assert_int_equal(io(f->eb, NVEMU_BIO_READ, 0, buf, &d, &r), 0);
	assert_int_equal(d.err, -EIO);
	nvemu_bdev_error_clear(f->eb);
	assert_int_equal(d1.called + d2.called, 2);
}

/* ---- through the engine */

static struct nvemu_bdev *ns_on_error_bdev(struct tu_env *env, struct nvemu_bdev **ram)
{
	struct nvemu_error err = {0};
	struct nvemu_bdev *eb;
	struct nvemu_ns_params p;
	uint32_t nsid;

	assert_int_equal(nvemu_bdev_ram_create("r", 1 << 20, 512, ram, &err), 0);
	assert_int_equal(nvemu_bdev_error_create("EE_r", *ram, &eb, &err), 0);
	nvemu_ns_params_init(&p);
	p.nsid = 5;
	p.bdev = eb;
	assert_int_equal(nvemu_subsys_add_ns_ex(env->subsys, &p, &nsid, &err), 0);
	assert_int_equal(nvemu_ctrl_attach_ns(env->ctrl, 5, &err), 0);
	return eb;
}

static void free_error_ns(struct tu_env *env, struct nvemu_bdev *eb, struct nvemu_bdev *ram)
{
	struct nvemu_error err = {0};

	if (nvemu_ctrl_ns_attached(env->ctrl, 5))
		assert_int_equal(nvemu_ctrl_detach_ns(env->ctrl, 5, &err), 0);
	assert_int_equal(nvemu_subsys_remove_ns(env->subsys, 5, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(eb, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(ram, &err), 0);
}

/* Each injected status reaches the host as is, in SMART and the error log. */
static void test_engine_statuses(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_bdev *ram, *eb = ns_on_error_bdev(env, &ram);
	struct nvemu_bdev_error_rule rule = failure(RD, 1);
	struct nvemu_error err = {0};
	struct nvme_error_log_page e;
	uint64_t media = env->ctrl->smart.media_errors, before;
	uint8_t buf[4096];
	static const struct {
		uint32_t mask;
		uint16_t status;
		bool media;
	} cases[] = {
		{RD, 0, true}, /* default: Unrecovered Read Error */
		{WR, 0, true}, /* default: Write Fault */
		{RD, NVEMU_SC_MEDIA(NVME_SC_GUARD_CHECK) | NVEMU_DNR, true},
		{RD, NVEMU_SC_MEDIA(NVME_SC_UNWRITTEN_BLOCK) | NVEMU_DNR, false},
		{WR, NVEMU_SC_GENERIC(NVME_SC_INTERNAL), false},
		{WR, NVEMU_SC_GENERIC(NVME_SC_NS_NOT_READY), false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool rd = cases[i].mask == RD;
		uint16_t want = cases[i].status ? cases[i].status : rd ? READ_ERR : WRITE_ERR;

		rule.io_mask = cases[i].mask;
		rule.status = cases[i].status;
		rule.offset = 200 * 512;
		rule.len = 512;
		assert_int_equal(nvemu_bdev_error_inject(eb, &rule, &err), 0);
		before = tu_error_count(env);
		assert_status(tu_rw(env, rd ? nvme_cmd_read : nvme_cmd_write, 5, 196, 8, buf, 4096),
			      want);
		assert_int_equal(tu_error_count(env), before + 1);
		assert_success(tu_get_log(env, NVME_LOG_LID_ERROR, 0, 0, false, &e, sizeof(e)));
		assert_int_equal(le16toh(e.status_field) >> 1, want);
		assert_int_equal(le32toh(e.nsid), 5);
		assert_int_equal(le64toh(e.lba), 200); /* the first LBA that failed */
		media += cases[i].media;
		assert_int_equal(env->ctrl->smart.media_errors, media);
		/* Outside the range, and once used up: fine. */
		assert_success(tu_rw(env, rd ? nvme_cmd_read : nvme_cmd_write, 5, 196, 8, buf, 4096));
	}
	free_error_ns(env, eb, ram);
}

struct async_cmd {
	struct nvemu_req req;
	unsigned done;
};

static void async_done(struct nvemu_req *req)
{
	((struct async_cmd *)req->transport_priv)->done++;
}

static void submit_read(struct tu_env *env, struct async_cmd *a, uint16_t cid, void *buf)
{
	memset(a, 0, sizeof(*a));
	a->req.cmd.opc = nvme_cmd_read;
	a->req.cmd.cid = cid;
	a->req.cmd.nsid = 5;
	a->req.cmd.cdw12 = 7;
	a->req.buf = buf;
	a->req.buf_len = 4096;
	a->req.done = async_done;
	a->req.transport_priv = a;
	nvemu_host_submit(env->host, 1, &a->req);
}

static struct nvemu_bdev_error_rule stop_rule(void)
{
	return (struct nvemu_bdev_error_rule){.io_mask = RD | WR | (1u << NVEMU_BIO_FLUSH),
					      .type = NVEMU_BDEV_ERROR_PENDING,
					      .num = NVEMU_BDEV_ERROR_FOREVER};
}

/* A device that stopped completing: Abort ends the held read; the rest goes on. */
static void test_stopped_abort(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_bdev *ram, *eb = ns_on_error_bdev(env, &ram);
	struct nvemu_bdev_error_rule rule = stop_rule();
	struct nvemu_error err = {0};
	static struct async_cmd a, b;
	static uint8_t buf[4096], buf2[4096];
	struct nvemu_sqe abort_cmd = {.opc = nvme_admin_abort_cmd};
	struct nvemu_cqe cqe;

	assert_int_equal(nvemu_bdev_error_inject(eb, &rule, &err), 0);
	submit_read(env, &a, 0x77, buf);
	submit_read(env, &b, 0x78, buf2);
	for (int i = 0; i < 10; i++)
		nvemu_host_poll(env->host);
	assert_int_equal(a.done + b.done, 0);
	assert_int_equal(nvemu_ctrl_inflight(env->ctrl), 2);
	abort_cmd.cdw10 = 1u | (0x77u << 16);
	assert_success(tu_admin(env, &abort_cmd, NULL, 0, &cqe));
	assert_int_equal(le32toh(cqe.dw0) & 1, 0); /* aborted */
	assert_int_equal(a.done, 1);
	assert_status(a.req.cqe.status, NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ));
	assert_int_equal(b.done, 0);
	/* The device comes back: the other read completes with its data. */
	assert_int_equal(nvemu_bdev_error_clear(eb), 0);
	for (int i = 0; i < 10 && !b.done; i++)
		nvemu_host_poll(env->host);
	assert_int_equal(b.done, 1);
	assert_success(b.req.cqe.status);
	assert_int_equal(nvemu_ctrl_inflight(env->ctrl), 0);
	free_error_ns(env, eb, ram);
}

/* Controller reset (CC.EN 1 -> 0) aborts the held commands; nothing leaks. */
static void test_stopped_reset(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_bdev *ram, *eb = ns_on_error_bdev(env, &ram);
	struct nvemu_bdev_error_rule rule = stop_rule();
	struct nvemu_error err = {0};
	static struct async_cmd a[4];
	static uint8_t buf[4][4096];

	assert_int_equal(nvemu_bdev_error_inject(eb, &rule, &err), 0);
	for (int i = 0; i < 4; i++)
		submit_read(env, &a[i], (uint16_t)(0x100 + i), buf[i]);
	assert_int_equal(nvemu_bdev_inflight(eb), 4);
	nvemu_ctrl_set_cc(env->ctrl, 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(a[i].done, 1);
		assert_status(a[i].req.cqe.status, NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ));
	}
	assert_int_equal(nvemu_bdev_inflight(eb), 0);
	assert_int_equal(nvemu_ctrl_inflight(env->ctrl), 0);
	/* The rule stays: the device is still stopped after the host comes back. */
	assert_int_equal(nvemu_host_enable(env->host), 0);
	free_error_ns(env, eb, ram);
}

/* Detach with held I/O, then abort as a teardown does: the namespace and bdevs go. */
static void test_stopped_detach_abort(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_bdev *ram, *eb = ns_on_error_bdev(env, &ram);
	struct nvemu_bdev_error_rule rule = stop_rule();
	struct nvemu_error err = {0};
	static struct async_cmd a;
	static uint8_t buf[4096];

	assert_int_equal(nvemu_bdev_error_inject(eb, &rule, &err), 0);
	submit_read(env, &a, 0x55, buf);
	assert_int_equal(nvemu_ctrl_detach_ns(env->ctrl, 5, &err), 0);
	assert_int_equal(a.done, 0);
	nvemu_ctrl_suspend(env->ctrl, false);
	nvemu_ctrl_abort_inflight(env->ctrl);
	assert_int_equal(a.done, 1);
	assert_status(a.req.cqe.status, NVEMU_SC_GENERIC(NVME_SC_ABORT_REQ));
	nvemu_ctrl_resume(env->ctrl);
	free_error_ns(env, eb, ram);
}

/* Subsystem destroy with held I/O: the controller is freed (ASan sees any leak). */
static void test_stopped_subsys_destroy(void **state)
{
	struct tu_env *env = *state;
	struct nvemu_bdev *ram, *eb = ns_on_error_bdev(env, &ram);
	struct nvemu_bdev_error_rule rule = stop_rule();
	struct nvemu_error err = {0};
	static struct async_cmd a;
	static uint8_t buf[4096];

	assert_int_equal(nvemu_bdev_error_inject(eb, &rule, &err), 0);
	submit_read(env, &a, 0x66, buf);
	assert_int_equal(a.done, 0);
	nvemu_host_destroy(env->host);
	env->host = NULL;
	nvemu_subsys_destroy(env->subsys);
	env->subsys = NULL;
	assert_int_equal(a.done, 1);
	assert_int_equal(nvemu_bdev_inflight(eb), 0);
	assert_int_equal(nvemu_bdev_destroy(eb, &err), 0);
	assert_int_equal(nvemu_bdev_destroy(ram, &err), 0);
}

/* A delay bdev over an error bdev passes the exact status and the cancel through. */
static void test_delay_over_error(void **state)
{
	struct fixture *f = *state;
	struct nvemu_bdev_delay_opts o = {.read_latency_us = 1000, .write_latency_us = 1000};
	struct nvemu_bdev_error_rule rule = failure(RD, 1);
	struct nvemu_error err = {0};
	struct nvemu_bdev *dly;
	uint8_t buf[4096];
	struct nvemu_bio bio;
	struct done d;

	rule.status = NVEMU_SC_MEDIA(NVME_SC_GUARD_CHECK);
	assert_int_equal(nvemu_bdev_delay_create("dly", f->eb, &o, &dly, &err), 0);
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), 0);
	assert_int_equal(io(dly, NVEMU_BIO_READ, 0, buf, &d, &bio), 0);
	for (int i = 0; i < 1000 && !d.called; i++) {
		struct timespec ts = {0, 100000};

		nanosleep(&ts, NULL);
		nvemu_bdev_poll(dly);
	}
	assert_int_equal(d.called, 1);
	assert_int_equal(d.err, -EIO);
	assert_int_equal(d.status, rule.status);
	rule = stop_rule();
	assert_int_equal(nvemu_bdev_error_inject(f->eb, &rule, &err), 0);
	assert_int_equal(io(dly, NVEMU_BIO_READ, 0, buf, &d, &bio), 0);
	assert_int_equal(nvemu_bdev_inflight(dly), 1);
	assert_int_equal(nvemu_bdev_cancel(dly, &bio), 0);
	assert_int_equal(d.err, -ECANCELED);
	nvemu_bdev_error_clear(f->eb);
	for (int i = 0; i < 100 && nvemu_bdev_inflight(dly); i++)
		nvemu_bdev_poll(dly);
	assert_int_equal(nvemu_bdev_inflight(dly), 0);
	assert_int_equal(nvemu_bdev_destroy(dly, &err), 0);
}

/* The delay bdev's p99 tail: about 1 in 100 I/Os takes it. */
static void test_delay_p99(void **state)
{
	struct fixture *f = *state;
	struct nvemu_bdev_delay_opts o = {.p99_read_latency_us = 100000};
	struct nvemu_error err = {0};
	struct nvemu_bdev *dly;
	uint8_t buf[4096];
	unsigned slow = 0;

	assert_int_equal(nvemu_bdev_delay_create("dly", f->ram, &o, &dly, &err), 0);
	for (int i = 0; i < 1000; i++) {
		struct nvemu_bio bio;
		struct done d;

		assert_int_equal(io(dly, NVEMU_BIO_READ, 0, buf, &d, &bio), 0);
		nvemu_bdev_poll(dly);
		if (!d.called) {
			/* Held for the tail: release it by waiting (100 ms). */
			slow++;
			for (int j = 0; j < 400 && !d.called; j++) {
				struct timespec ts = {0, 1000000};

				nanosleep(&ts, NULL);
				nvemu_bdev_poll(dly);
			}
			assert_int_equal(d.called, 1);
		}
	}
	assert_in_range(slow, 3, 25);
	o.p99_read_latency_us = NVEMU_BDEV_DELAY_MAX_US + 1;
	assert_int_equal(nvemu_bdev_delay_set_latency(dly, &o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "p99_read_latency"));
	assert_int_equal(nvemu_bdev_destroy(dly, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_passthrough, setup, teardown),
		cmocka_unit_test_setup_teardown(test_range_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_runtime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_probability_seeded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_nomem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_depth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delay_over_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delay_p99, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_statuses, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_stopped_abort, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_stopped_reset, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_stopped_detach_abort, tu_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_stopped_subsys_destroy, tu_setup, tu_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
